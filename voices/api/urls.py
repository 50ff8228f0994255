from rest_framework.routers import SimpleRouter

from . import views

router = SimpleRouter()
router.register("languages", views.LanguageViewSet, basename="language")
router.register("voices", views.VoiceViewSet, basename="voice")

urlpatterns: list = []
