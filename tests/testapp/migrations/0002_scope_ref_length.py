from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("testapp", "0001_initial")]

    operations = [
        migrations.AlterField(
            model_name="sealednote", name="scope_ref", field=models.CharField(default="notes", max_length=100),
        ),
    ]
