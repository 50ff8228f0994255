"""/api/v1/: every app's routes in one router, the auth endpoints, the OpenAPI schema and Swagger UI."""

from urllib.parse import urlsplit

from csp.decorators import csp_update
from django.urls import path
from drf_spectacular.settings import spectacular_settings
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.routers import DefaultRouter

from accounts.api import urls as accounts_urls
from jobs.api import urls as jobs_urls
from topics.api import urls as topics_urls
from voices.api import urls as voices_urls

APPS = [accounts_urls, voices_urls, topics_urls, jobs_urls]

router = DefaultRouter()
for app in APPS:
    router.registry.extend(app.router.registry)

# Swagger UI comes from its CDN; its start-up script is a file of its own (the "split" view), not inline.
swagger_ui = urlsplit(spectacular_settings.SWAGGER_UI_DIST)
swagger_ui_origin = [f"{swagger_ui.scheme}://{swagger_ui.netloc}"]
docs = csp_update({directive: swagger_ui_origin for directive in ("script-src", "style-src", "img-src")})(
    SpectacularSwaggerSplitView.as_view(url_name="api-schema")
)

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", docs, name="api-docs"),
    *(pattern for app in APPS for pattern in app.urlpatterns),
    *router.urls,
]
