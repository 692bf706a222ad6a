"""The workbench's settings (environment variables ``NOCERT_UI_*``), with the defaults an operator gets."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class WorkbenchSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="NOCERT_UI_", extra="ignore")

    #: A session ends after this many minutes without a request.
    idle_minutes: float = Field(default=30, gt=0)
    #: ... and this many hours after sign-in, however busy.
    absolute_hours: float = Field(default=12, gt=0)
    #: This many failed sign-ins in a row lock the login ...
    lockout_failures: int = Field(default=5, ge=1)
    #: ... for this many minutes.
    lockout_minutes: float = Field(default=15, gt=0)
