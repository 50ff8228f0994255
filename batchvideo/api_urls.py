"""/api/v1/: every app's routes in one router, the auth endpoints, the OpenAPI schema and Swagger UI."""

from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter

from accounts.api import urls as accounts_urls
from jobs.api import urls as jobs_urls
from topics.api import urls as topics_urls
from voices.api import urls as voices_urls

APPS = [accounts_urls, voices_urls, topics_urls, jobs_urls]

router = DefaultRouter()
for app in APPS:
    router.registry.extend(app.router.registry)

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    *(pattern for app in APPS for pattern in app.urlpatterns),
    *router.urls,
]
