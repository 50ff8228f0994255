from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("topics", "0003_team"), ("accounts", "0005_personal_teams")]

    operations = [
        migrations.AddConstraint(
            model_name="topic",
            constraint=models.UniqueConstraint(fields=("team", "name"), name="topic_unique_per_team"),
        ),
        migrations.AddConstraint(
            model_name="topic",
            constraint=models.UniqueConstraint(
                condition=models.Q(("team__isnull", True)), fields=("name",), name="topic_unique_shared"
            ),
        ),
    ]
