from django.urls import path
from rest_framework.routers import SimpleRouter

from . import teams, views

router = SimpleRouter()
router.register("accounts", views.AccountViewSet, basename="account")

urlpatterns = [
    path("auth/register/", views.RegisterView.as_view(), name="auth-register"),
    path("auth/token/", views.TokenLoginView.as_view(), name="auth-token"),
    path("auth/logout/", views.LogoutView.as_view(), name="auth-logout"),
    path("auth/me/", views.MeView.as_view(), name="auth-me"),
    path("teams/", teams.TeamListView.as_view(), name="team-list"),
    path("teams/<str:slug>/members/", teams.MemberListView.as_view(), name="team-members"),
    path("teams/<str:slug>/members/<str:username>/", teams.MemberView.as_view(), name="team-member"),
]
