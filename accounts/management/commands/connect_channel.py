"""Connect an Account's YouTube channel on a host without a browser: paste a refresh token (made with the
same OAuth client elsewhere, e.g. the OAuth Playground with "use your own credentials")."""

import getpass
import sys

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from accounts import channels
from accounts.models import Account


class Command(BaseCommand):
    help = (
        "Store a YouTube refresh token for an account (read from standard input, never from the command "
        "line), or --disconnect it."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("account", type=int, help="The account's id.")
        parser.add_argument("--disconnect", action="store_true", help="Forget the channel's grant.")

    def handle(self, *args, account: int, disconnect: bool, **options) -> None:
        row = Account.objects.filter(pk=account).first()
        if row is None:
            raise CommandError(f"There is no account {account}.")
        if disconnect:
            done = channels.channel_disconnect(account=row)
            self.stdout.write(
                f"Disconnected {row.username}." if done else f"{row.username} was not connected."
            )
            return
        if sys.stdin.isatty():
            token = getpass.getpass(f"Refresh token for {row.username} (not shown): ")
        else:
            token = sys.stdin.readline()
        try:
            channels.channel_store_refresh_token(account=row, refresh_token=token)
        except ValidationError as error:
            raise CommandError("; ".join(error.messages)) from error
        self.stdout.write(f"Connected the YouTube channel of {row.username}; the token is stored encrypted.")
