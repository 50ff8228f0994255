from django.contrib.auth import password_validation
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts.uploads import check_image

from ..brand import ACCOUNT_EXTRA_JSON_SCHEMA, check_account_extra
from ..models import Account, User
from .errors import errors_under
from .ownership import OwnedSerializer
from .representation import CompiledRepresentation


@extend_schema_field(ACCOUNT_EXTRA_JSON_SCHEMA)
class AccountExtraField(serializers.JSONField):
    def to_internal_value(self, data):
        return check_account_extra(super().to_internal_value(data))


class AccountSerializer(OwnedSerializer):
    extra = AccountExtraField(required=False, help_text="The brand profile; see the schema for its keys.")
    logo_url = serializers.SerializerMethodField(help_text="A signed link to the logo, or empty.")

    unique_per_team = ("username",)

    class Meta:
        model = Account
        fields = [
            "id",
            "username",
            "platform",
            "area",
            "extra",
            "logo_url",
            "team",
            "owner",
            "shared",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["created_at", "updated_at"]

    def get_logo_url(self, obj: Account) -> str:
        return obj.logo.url if obj.logo else ""


class AccountBriefSerializer(CompiledRepresentation, serializers.ModelSerializer):
    class Meta:
        model = Account
        fields = ["id", "username", "platform"]
        read_only_fields = fields


class ImageUploadSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="PNG, JPEG or WebP, at most 5 MB.")

    def validate_file(self, uploaded):
        return check_image(uploaded)


class RegisterSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(write_only=True, trim_whitespace=False, style={"input_type": "password"})

    def validate_username(self, username: str) -> str:
        User._meta.get_field("username").run_validators(username)
        if User.objects.filter(username__iexact=username).exists():
            raise serializers.ValidationError("This username is taken.")
        return username

    def validate(self, attrs: dict) -> dict:
        with errors_under("password"):
            password_validation.validate_password(attrs["password"], user=User(username=attrs["username"]))
        return attrs


class LoginSerializer(serializers.Serializer):
    username = serializers.CharField()
    password = serializers.CharField(write_only=True, trim_whitespace=False, style={"input_type": "password"})


class TokenSerializer(serializers.Serializer):
    token = serializers.CharField(read_only=True, help_text="Send it as `Authorization: Token <token>`.")


class UserSerializer(serializers.ModelSerializer):
    email = serializers.CharField(read_only=True, help_text="May be empty.")

    class Meta:
        model = User
        fields = ["id", "username", "email", "is_staff", "is_superuser", "date_joined", "last_login"]
        read_only_fields = fields


class RegisteredSerializer(UserSerializer):
    token = serializers.CharField(read_only=True)

    class Meta(UserSerializer.Meta):
        fields = [*UserSerializer.Meta.fields, "token"]
        read_only_fields = fields
