from django.urls import include, path

from encryption_keys import views

urlpatterns = [
    path("organization/encryption-keys/", views.key_list, name="encryption_key_list"),
    path("organization/encryption-keys/link/", views.key_link, name="encryption_key_link"),
    path("organization/encryption-keys/<uuid:pk>/", views.key_detail, name="encryption_key_detail"),
    path("organization/encryption-keys/<uuid:pk>/replacements/", views.key_replacements,
         name="encryption_key_replacements"),
    path("organization/encryption-keys/<uuid:pk>/check/", views.key_check, name="encryption_key_check"),
    path("organization/encryption-keys/<uuid:pk>/unlink/", views.key_unlink, name="encryption_key_unlink"),
    path("organization/encryption-keys/<uuid:pk>/replace/", views.key_replace, name="encryption_key_replace"),
    path("", include("encryption_keys.lifecycle.urls")),
]
