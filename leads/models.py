from django.conf import settings
from django.db import models
from django.utils import timezone


class LeadSource(models.TextChoices):
    META_ADS = "META_ADS", "Meta ads"
    INSTAGRAM = "INSTAGRAM", "Instagram"
    GOOGLE = "GOOGLE", "Google"
    ORGANIC = "ORGANIC", "Organic"
    REFERRAL = "REFERRAL", "Referral"
    OTHER = "OTHER", "Other"


class LeadStatus(models.TextChoices):
    NEW = "NEW", "New"
    CONTACTED = "CONTACTED", "Contacted"
    INTERESTED = "INTERESTED", "Interested"
    TRIAL_SCHEDULED = "TRIAL_SCHEDULED", "Trial scheduled"
    TRIAL_ATTENDED = "TRIAL_ATTENDED", "Trial attended"
    CONVERTED = "CONVERTED", "Converted"
    LOST = "LOST", "Lost"


class LeadQuality(models.TextChoices):
    HOT = "HOT", "Hot"
    WARM = "WARM", "Warm"
    COLD = "COLD", "Cold"


class Level(models.TextChoices):
    A1 = "A1", "A1"
    A1_HYBRID = "A1_HYBRID", "A1 hybrid"
    A1_HYBRID_MALAYALAM = "A1_HYBRID_MALAYALAM", "A1 hybrid (Malayalam)"
    A2 = "A2", "A2"
    B1 = "B1", "B1"
    B2 = "B2", "B2"
    SPOKEN_GERMAN = "SPOKEN_GERMAN", "Spoken German"


class Lead(models.Model):
    """A prospective student, followed up by staff until they pay (conversion) or are lost."""

    name = models.CharField(max_length=150)
    whatsapp = models.CharField(max_length=20)
    email = models.EmailField(blank=True)
    phone = models.CharField(max_length=20, blank=True)
    source = models.CharField(max_length=16, choices=LeadSource.choices)
    status = models.CharField(max_length=16, choices=LeadStatus.choices, default=LeadStatus.NEW)
    quality = models.CharField(max_length=8, choices=LeadQuality.choices, blank=True)
    interested_level = models.CharField(max_length=24, choices=Level.choices, blank=True)
    notes = models.TextField(blank=True)
    follow_up_date = models.DateField(null=True, blank=True)
    assigned_to = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="assigned_leads",
    )
    converted = models.BooleanField(default=False)
    converted_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["status", "-created_at"], name="lead_status_idx"),
            models.Index(fields=["-created_at", "-id"], name="lead_created_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(converted=False) | models.Q(status="CONVERTED"),
                name="lead_converted_has_converted_status",
            ),
        ]

    def __str__(self) -> str:
        return self.name
