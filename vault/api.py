from ninja import Router

router = Router(tags=["Config Stores"])
resolve_router = Router(tags=["Vault resolution"])
