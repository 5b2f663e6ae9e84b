from ninja import Router

blob_router = Router(tags=["Blobs"])
ingest_router = Router(tags=["Debugger ingest"])
