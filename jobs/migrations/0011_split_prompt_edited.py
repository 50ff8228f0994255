from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("jobs", "0010_stock_footage")]

    operations = [
        # Rows made before the flag keep their prompt on a text edit, as they always did: nobody knows
        # whether an operator wrote it. New rows follow their text until an operator edits the prompt.
        migrations.AddField(
            model_name="jobsplit",
            name="prompt_edited",
            field=models.BooleanField(default=True),
        ),
        migrations.AlterField(
            model_name="jobsplit",
            name="prompt_edited",
            field=models.BooleanField(
                default=False,
                help_text="The operator wrote the prompt: it stays when the text changes (else it follows it).",
            ),
        ),
    ]
