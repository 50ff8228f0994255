from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("voices", "0003_team"), ("accounts", "0005_personal_teams")]

    operations = [
        migrations.AddConstraint(
            model_name="language",
            constraint=models.UniqueConstraint(fields=("team", "code"), name="language_unique_per_team"),
        ),
        migrations.AddConstraint(
            model_name="language",
            constraint=models.UniqueConstraint(
                condition=models.Q(("team__isnull", True)), fields=("code",), name="language_unique_shared"
            ),
        ),
    ]
