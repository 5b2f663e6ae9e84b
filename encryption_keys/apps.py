from django.apps import AppConfig


class EncryptionKeysConfig(AppConfig):
    name = "encryption_keys"
    verbose_name = "Encryption keys"
    default_auto_field = "django.db.models.BigAutoField"
