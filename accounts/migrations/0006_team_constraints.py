from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("accounts", "0005_personal_teams")]

    operations = [
        migrations.AddConstraint(
            model_name="account",
            constraint=models.UniqueConstraint(fields=("team", "username"), name="account_unique_per_team"),
        ),
        migrations.AddConstraint(
            model_name="account",
            constraint=models.UniqueConstraint(
                condition=models.Q(("team__isnull", True)), fields=("username",), name="account_unique_shared"
            ),
        ),
    ]
