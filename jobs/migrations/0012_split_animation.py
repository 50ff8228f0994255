from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("jobs", "0011_split_prompt_edited"),
    ]

    operations = [
        migrations.AddField(
            model_name="jobsplit",
            name="animation",
            field=models.JSONField(
                blank=True,
                default=dict,
                help_text="The moving clip the render made from the selected picture: {key, picture}.",
            ),
        ),
    ]
