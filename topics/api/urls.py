from rest_framework.routers import SimpleRouter

from . import views

router = SimpleRouter()
router.register("topics", views.TopicViewSet, basename="topic")

urlpatterns: list = []
