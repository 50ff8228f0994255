from django.conf import settings
from django.contrib.auth import authenticate, logout, user_logged_in
from django.db import transaction
from drf_spectacular.utils import extend_schema
from rest_framework import permissions, status
from rest_framework.authtoken.models import Token
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied, Throttled, ValidationError
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from .. import teams
from ..models import Account, User
from .docs import (
    ERROR_401,
    ERROR_403,
    ERROR_404,
    detail_response,
    owned_crud_docs,
    request_example,
    response_example,
    validation_error,
)
from .ownership import ApiViewMixin, OwnedModelViewSet
from .serializers import (
    AccountSerializer,
    ImageUploadSerializer,
    LoginSerializer,
    RegisteredSerializer,
    RegisterSerializer,
    TokenSerializer,
    UserSerializer,
)

ACCOUNT_EXAMPLE = {
    "id": 3,
    "username": "health-tips",
    "platform": "youtube",
    "area": "CN",
    "extra": {
        "subtitle_background": "#578B2E",
        "subtitle_color": "#FFFFFF",
        "enable_transition": True,
        "transition_types": ["fade"],
        "logo_corner": "top-right",
    },
    "logo_url": "/files/ImFjY291bnRzL2xvZ29zL2xvZ28ucG5nIg:1tX...",
    "team": "health",
    "owner": "6f1c1b8e-4c1a-4d0e-9d1e-2b8f0c6a1e11",
    "shared": False,
    "created_at": "2025-01-01T12:00:00Z",
    "updated_at": "2025-01-01T12:00:00Z",
}
USER_EXAMPLE = {
    "id": "6f1c1b8e-4c1a-4d0e-9d1e-2b8f0c6a1e11",
    "username": "editor",
    "email": "",
    "is_staff": False,
    "is_superuser": False,
    "date_joined": "2025-01-01T12:00:00Z",
    "last_login": "2025-01-02T08:00:00Z",
}
TOKEN = "9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b"


@owned_crud_docs(
    noun="account",
    plural="accounts",
    serializer=AccountSerializer,
    tag="accounts",
    example=ACCOUNT_EXAMPLE,
    write_example={
        "username": "health-tips",
        "platform": "youtube",
        "area": "CN",
        "extra": {"subtitle_background": "#578B2E", "logo_corner": "top-right"},
    },
    invalid_example={
        "extra": {
            "logo_corner": ["Must be one of top-left, top-right, bottom-left, bottom-right."],
            "subtitle_colour": ["Unknown key; the allowed keys are subtitle_background, ..."],
        }
    },
)
class AccountViewSet(OwnedModelViewSet):
    """Publishing channels and their brand profiles (subtitle colours, transitions, logo, presenter)."""

    queryset = Account.objects.all()
    serializer_class = AccountSerializer
    filterset_fields = ["platform"]

    @extend_schema(
        summary="Upload the account's logo",
        tags=["accounts"],
        request={"multipart/form-data": ImageUploadSerializer},
        responses={
            200: AccountSerializer,
            403: ERROR_403,
            404: ERROR_404,
            400: validation_error({"file": ["The upload is not a readable PNG, JPEG or WebP picture."]}),
        },
        examples=[response_example("Account with its logo", ACCOUNT_EXAMPLE)],
        description="A PNG, JPEG or WebP picture of at most 5 MB, stored under a generated name.",
    )
    @action(detail=True, methods=["post"], parser_classes=[MultiPartParser, FormParser])
    def logo(self, request, pk=None) -> Response:
        account = self.get_object()
        upload = ImageUploadSerializer(data=request.data)
        upload.is_valid(raise_exception=True)
        picture = upload.validated_data["file"]
        account.logo.save(picture.name, picture, save=True)
        return Response(AccountSerializer(account, context=self.get_serializer_context()).data)


class RegisterView(ApiViewMixin, APIView):
    """Open a user account; the reply carries an API token."""

    authentication_classes: list = []
    permission_classes = [permissions.AllowAny]

    @extend_schema(
        summary="Register",
        tags=["auth"],
        request=RegisterSerializer,
        responses={
            201: RegisteredSerializer,
            400: validation_error(
                {"password": ["This password is too short. It must contain at least 8 characters."]}
            ),
            403: detail_response("Registration closed", "Registration is closed; ask an administrator."),
        },
        examples=[
            request_example("New user", {"username": "editor", "password": "a long pass phrase"}),
            response_example("Registered", {**USER_EXAMPLE, "token": TOKEN}, "201"),
        ],
        description="Username and password (Django's password rules apply). Closed (403) unless the "
        "installation opens it (settings.API_REGISTRATION_OPEN).",
    )
    def post(self, request) -> Response:
        if not settings.API_REGISTRATION_OPEN:
            raise PermissionDenied("Registration is closed; ask an administrator.")
        serializer = RegisterSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        with transaction.atomic():
            user = User.objects.create_user(
                username=serializer.validated_data["username"], password=serializer.validated_data["password"]
            )
            token = Token.objects.create(user=user)
            teams.team_create(name=user.username, admin=user, personal=True)
        return Response({**UserSerializer(user).data, "token": token.key}, status=status.HTTP_201_CREATED)


class TokenLoginView(ApiViewMixin, APIView):
    """Exchange a username and password for the user's API token (DRF authtoken).

    Failed logins count towards the client address's lockout (django-axes, as on the admin's login):
    authenticate() gets the request, and a locked-out address is refused even the right password."""

    authentication_classes: list = []
    permission_classes = [permissions.AllowAny]

    @extend_schema(
        summary="Log in (get a token)",
        tags=["auth"],
        request=LoginSerializer,
        responses={
            200: TokenSerializer,
            400: validation_error({"non_field_errors": ["Unable to log in with the provided credentials."]}),
            429: detail_response("Too many failed logins from this address", settings.AXES_COOLOFF_MESSAGE),
        },
        examples=[
            request_example("Credentials", {"username": "editor", "password": "a long pass phrase"}),
            response_example("Token", {"token": TOKEN}),
        ],
    )
    def post(self, request) -> Response:
        serializer = LoginSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = authenticate(
            request,
            username=serializer.validated_data["username"],
            password=serializer.validated_data["password"],
        )
        if user is None:
            if getattr(request, "axes_locked_out", False):
                raise Throttled(
                    wait=settings.AXES_COOLOFF_TIME.total_seconds(), detail=settings.AXES_COOLOFF_MESSAGE
                )
            raise ValidationError({"non_field_errors": ["Unable to log in with the provided credentials."]})
        token, _ = Token.objects.get_or_create(user=user)
        user_logged_in.send(sender=type(user), request=request, user=user)  # last_login, axes' access log
        return Response({"token": token.key})


class LogoutView(ApiViewMixin, APIView):
    """Delete the token the request was made with, or end the browser session it came with."""

    @extend_schema(
        summary="Log out (delete the token)",
        tags=["auth"],
        request=None,
        responses={204: None, 401: ERROR_401},
    )
    def post(self, request) -> Response:
        if isinstance(request.auth, Token):
            request.auth.delete()
        else:  # a browser session: end it, and leave the user's scripts their token
            logout(request._request)
        return Response(status=status.HTTP_204_NO_CONTENT)


class MeView(ApiViewMixin, APIView):
    @extend_schema(
        summary="The logged-in user",
        tags=["auth"],
        examples=[response_example("Me", USER_EXAMPLE)],
        responses={200: UserSerializer, 401: ERROR_401},
    )
    def get(self, request) -> Response:
        return Response(UserSerializer(request.user).data)
