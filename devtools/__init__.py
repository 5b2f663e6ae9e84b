"""Development tooling, never part of a production install: the local KMS server (moto plus the AWS-fidelity
layer), the Debugger's traffic simulator and the demo, with their management commands (`kms_server`,
`simulate_traffic`, `demo`).

Installed as a Django app by `konnect_admin.settings_dev` (`make run`) and `tests.settings` only; production
settings (`konnect_admin.settings`) do not install it, the wheel does not ship it, and moto, which it needs, is a
dev dependency (`pip install -e ".[dev]"`). Product code never imports it: tests/install/test_no_dev_tooling.py
starts production with this package and moto unimportable.
"""
