"""An Account's YouTube channel: its OAuth grant, stored encrypted, and the consent redirect that
makes one.

The OAuth client (one Google Cloud project) comes from settings; the refresh token an operator's
consent yields is encrypted with CHANNEL_SECRET_KEYS (Fernet) before it is stored, and only
decrypted to build the credentials a publication uses. Nothing here logs or returns a token.
"""

from dataclasses import dataclass

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from . import teams
from .models import Account, ChannelCredentials, Role

# videos.insert and thumbnails.set take youtube.upload; captions.insert needs youtube.force-ssl.
SCOPES = [
    "https://www.googleapis.com/auth/youtube.upload",
    "https://www.googleapis.com/auth/youtube.force-ssl",
]
PLATFORM = "youtube"
NO_KEY = (
    "CHANNEL_SECRET_KEYS is not set, so channel credentials cannot be stored encrypted; nothing was "
    'stored. Generate a key with `python -c "from cryptography.fernet import Fernet; '
    'print(Fernet.generate_key().decode())"`, set CHANNEL_SECRET_KEYS to it and restart.'
)
NO_CLIENT = (
    "YOUTUBE_CLIENT_ID and YOUTUBE_CLIENT_SECRET are not set: create an OAuth client in the Google "
    "Cloud project (README, Publishing to YouTube) and set them."
)
REVOKED = (
    "YouTube refused the channel's saved authorisation (invalid_grant: it was revoked, expired, or the "
    "Google account's password changed). Connect the channel again on its account page "
    "(Connect YouTube channel), then publish again."
)


def channel_can_manage(account: Account, user) -> bool:
    """Who may connect or disconnect a channel: its team's admins; a shared one: superusers."""
    return teams.may_edit(user, account)


def channel_can_publish(account: Account, user, *, team) -> bool:
    """Who may publish a job of `team` to `account`: a publisher of the team, to one of the team's own
    channels; to a shared channel (a preset), superusers only."""
    if user is None or not user.is_authenticated:
        return False
    if account.team_id is None:
        return user.is_superuser
    return account.team_id == getattr(team, "pk", None) and teams.has_role(user, team, Role.PUBLISHER)


def _fernet() -> MultiFernet:
    keys = [key for key in settings.CHANNEL_SECRET_KEYS if key]
    if not keys:
        raise ValidationError(NO_KEY)
    try:
        return MultiFernet([Fernet(key.encode()) for key in keys])
    except ValueError as error:
        raise ValidationError(
            "CHANNEL_SECRET_KEYS holds a key that is not a Fernet key (32 url-safe "
            "base64-encoded bytes); nothing was stored."
        ) from error


def check_channel_setup() -> None:
    """Refuse to start a connection that could not be stored or used."""
    if not (settings.YOUTUBE_CLIENT_ID and settings.YOUTUBE_CLIENT_SECRET):
        raise ValidationError(NO_CLIENT)
    _fernet()


def _check_youtube(account: Account) -> None:
    if account.platform != PLATFORM:
        raise ValidationError(
            f"Account {account.username!r} is on platform {account.platform!r}; only "
            f"{PLATFORM!r} channels can be connected and published to."
        )


@transaction.atomic
def channel_store_refresh_token(
    *, account: Account, refresh_token: str, user=None, scopes: list[str] | None = None
) -> ChannelCredentials:
    """Store (or replace) the channel's grant, encrypted."""
    _check_youtube(account)
    refresh_token = (refresh_token or "").strip()
    if not refresh_token or any(character.isspace() for character in refresh_token):
        raise ValidationError("A refresh token is one word of text; nothing was stored.")
    encrypted = _fernet().encrypt(refresh_token.encode())
    credentials, _created = ChannelCredentials.objects.update_or_create(
        account=account,
        defaults={
            "refresh_token_encrypted": encrypted,
            "scopes": " ".join(scopes or SCOPES),
            "connected_by": user if user is not None and user.is_authenticated else None,
            "connected_at": timezone.now(),
            "problem": "",
        },
    )
    return credentials


def channel_disconnect(*, account: Account) -> bool:
    deleted, _ = ChannelCredentials.objects.filter(account=account).delete()
    return bool(deleted)


def channel_mark_revoked(*, account: Account) -> None:
    ChannelCredentials.objects.filter(account=account).update(problem=REVOKED[:500])


def channel_connection(account: Account) -> ChannelCredentials | None:
    return ChannelCredentials.objects.filter(account=account).first()


def channel_credentials(account: Account):
    """google.oauth2 credentials for the channel; its first request refreshes the access token."""
    from google.oauth2.credentials import Credentials

    _check_youtube(account)
    connection = channel_connection(account)
    if connection is None:
        raise ValidationError(
            f"Channel {account.username!r} is not connected to YouTube: connect it on its "
            "account page (Connect YouTube channel) first."
        )
    if connection.problem:
        raise ValidationError(connection.problem)
    if not (settings.YOUTUBE_CLIENT_ID and settings.YOUTUBE_CLIENT_SECRET):
        raise ValidationError(NO_CLIENT)
    try:
        refresh_token = _fernet().decrypt(bytes(connection.refresh_token_encrypted)).decode()
    except InvalidToken as error:
        raise ValidationError(
            f"The saved authorisation of {account.username!r} cannot be decrypted with "
            "CHANNEL_SECRET_KEYS (was the key replaced?): connect the channel again."
        ) from error
    return Credentials(
        token=None,
        refresh_token=refresh_token,
        token_uri=settings.YOUTUBE_TOKEN_URI,
        client_id=settings.YOUTUBE_CLIENT_ID,
        client_secret=settings.YOUTUBE_CLIENT_SECRET,
        scopes=connection.scopes.split() or SCOPES,
    )


# ---------------------------------------------------------------- the consent redirect


@dataclass(frozen=True)
class ConsentStart:
    url: str  # Google's consent page
    state: str  # must come back unchanged
    code_verifier: str  # PKCE: proves the answer comes to whoever started


def _flow(redirect_uri: str, *, state: str | None = None, code_verifier: str | None = None):
    from google_auth_oauthlib.flow import Flow

    client = {
        "web": {
            "client_id": settings.YOUTUBE_CLIENT_ID,
            "client_secret": settings.YOUTUBE_CLIENT_SECRET,
            "auth_uri": settings.YOUTUBE_AUTH_URI,
            "token_uri": settings.YOUTUBE_TOKEN_URI,
            "redirect_uris": [redirect_uri],
        }
    }
    return Flow.from_client_config(
        client,
        scopes=SCOPES,
        redirect_uri=redirect_uri,
        state=state,
        code_verifier=code_verifier,
        autogenerate_code_verifier=code_verifier is None,
    )


def consent_start(*, account: Account, redirect_uri: str) -> ConsentStart:
    """Where to send the operator to grant access; keep state and code_verifier for consent_finish."""
    _check_youtube(account)
    check_channel_setup()
    flow = _flow(redirect_uri)
    # offline + consent: Google hands out a refresh token every time, also on a reconnect.
    url, state = flow.authorization_url(
        access_type="offline", prompt="consent", include_granted_scopes="true"
    )
    return ConsentStart(url=url, state=state, code_verifier=flow.code_verifier)


def consent_finish(
    *, account: Account, user, redirect_uri: str, state: str, code_verifier: str, code: str
) -> ChannelCredentials:
    """Exchange the consent's code for the channel's refresh token and store it."""
    from oauthlib.oauth2.rfc6749.errors import OAuth2Error

    _check_youtube(account)
    check_channel_setup()
    flow = _flow(redirect_uri, state=state, code_verifier=code_verifier)
    try:
        flow.fetch_token(code=code, verify=settings.YOUTUBE_CA_BUNDLE or True)
    except OAuth2Error as error:
        raise ValidationError(f"Google refused the consent's code ({error.error}): connect again.") from error
    refresh_token = flow.credentials.refresh_token
    if not refresh_token:
        raise ValidationError(
            "Google returned no refresh token. Remove this app's access in the Google "
            "account's security settings, then connect again."
        )
    return channel_store_refresh_token(
        account=account,
        refresh_token=refresh_token,
        user=user,
        scopes=list(flow.credentials.granted_scopes or SCOPES),
    )
