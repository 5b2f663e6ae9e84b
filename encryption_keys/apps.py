from django.apps import AppConfig


class EncryptionKeysConfig(AppConfig):
    name = "encryption_keys"
    verbose_name = "Encryption keys"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from encryption_keys import views
        from konnect_admin import demo, navigation

        navigation.ORG_SETTINGS_MENU.append(views.settings_menu)
        navigation.BANNERS.append(views.unhealthy_key_banners)
        navigation.DASHBOARD_CARDS.append(views.dashboard_card)
        demo.DEMO_STEPS.append(link_demo_key)


def link_demo_key(demo, log) -> None:
    """Acme links a customer key in the US region: a multi-region key in us-west-2, replicated to us-east-2."""
    from encryption_keys import local_kms, services

    organization, admin = demo.organizations["Acme"], demo.users["admin@acme.test"]
    arn = local_kms.create_key(region="us-west-2", description="Acme customer key (demo)", multi_region=True,
                               rotation=True)
    local_kms.replicate_key(arn, to_region="us-east-2")
    try:
        linked = services.link_key(organization=organization, region="us", key_ref=arn, name="Acme US key",
                                   description="Customer-managed key for the US region (demo)", actor=admin)
    except services.KeyVerificationFailed as failure:
        log(f"Could not link the Acme demo key: {failure}")
        return
    passed = sum(check.verdict == "pass" for check in linked.checklist.checks)
    log(f"Linked CMEK “{linked.key.name}” for Acme (US): {arn} — multi-region (us-west-2 → us-east-2), rotation on; "
        f"checklist: {passed} of {len(linked.checklist.checks)} passed, {len(linked.checklist.warnings)} warnings.")
