from django.urls import path

from encryption_keys.lifecycle import views

urlpatterns = [
    path("organization/encryption-keys/replacements/", views.rewrap_job_list, name="rewrap_job_list"),
    path("organization/encryption-keys/replacements/<int:pk>/", views.rewrap_job_detail, name="rewrap_job_detail"),
    path("organization/encryption-keys/replacements/<int:pk>/resume/", views.rewrap_job_resume,
         name="rewrap_job_resume"),
]
