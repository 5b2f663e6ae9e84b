"""Demo data of the vault: a config store with a few secrets and a Vault entity on Acme's control planes."""

from __future__ import annotations

import secrets

from vault import services
from vault.protection import protection_summary

# (control plane key, config store, Vault prefix, secret keys)
DEMO_STORES = [
    ("payments", "payments-secrets", "payments-vault", ["stripe-api-key", "db-password", "webhook-signing-secret"]),
    ("storefront", "storefront-secrets", "storefront-vault", ["session-secret", "cdn-token"]),
]


def vault_demo_step(demo, log) -> None:
    admin = demo.users["admin@acme.test"]
    for cp_key, store_name, prefix, keys in DEMO_STORES:
        control_plane = demo.control_planes[cp_key]
        store = services.config_store_create(actor=admin, control_plane=control_plane, name=store_name)
        for key in keys:
            # Random demo values: nothing secret is written in the source.
            services.secret_create(actor=admin, store=store, key=key, value=f"demo-{secrets.token_urlsafe(18)}")
        services.vault_create(actor=admin, control_plane=control_plane, prefix=prefix, config_store=store,
                              description=f"Konnect Config Store of {control_plane.name}")
        protection = protection_summary(control_plane)
        log(f"Vault: {len(keys)} secrets in config store {store_name!r} on {cp_key}, under the "
            f"{protection.key_label.lower()}; reference them as {{vault://{prefix}/<key>}}."
            + (" (Created before the CMEK was linked: 'Protect with CMEK' moves it.)" if protection.can_migrate else ""))
