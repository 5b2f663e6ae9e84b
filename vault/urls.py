from django.urls import path

from vault import views

CP = "control-planes/<uuid:pk>/vault/"
STORE = CP + "config-stores/<uuid:store_pk>/"
SECRET = STORE + "secrets/<uuid:secret_pk>/"

urlpatterns = [
    path(CP, views.config_store_list, name="vault_config_store_list"),
    path(CP + "config-stores/", views.config_store_create, name="vault_config_store_create"),
    path(STORE, views.secret_list, name="vault_secret_list"),
    path(STORE + "rename/", views.config_store_rename, name="vault_config_store_rename"),
    path(STORE + "delete/", views.config_store_delete, name="vault_config_store_delete"),
    path(STORE + "secrets/new/", views.secret_create, name="vault_secret_create"),
    path(SECRET + "edit/", views.secret_update, name="vault_secret_update"),
    path(SECRET + "delete/", views.secret_delete, name="vault_secret_delete"),
    path(SECRET + "status/", views.secret_status, name="vault_secret_status"),
    path(CP + "vaults/new/", views.vault_create, name="vault_entity_create"),
    path(CP + "vaults/<uuid:vault_pk>/edit/", views.vault_update, name="vault_entity_update"),
    path(CP + "vaults/<uuid:vault_pk>/delete/", views.vault_delete, name="vault_entity_delete"),
    path(CP + "protect-with-cmek/", views.protect_with_cmek, name="vault_protect_with_cmek"),
    path(CP + "protect-with-cmek/<int:job_pk>/", views.protection_job_detail, name="vault_protection_job"),
]
