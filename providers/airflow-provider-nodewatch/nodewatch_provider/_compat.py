"""The Airflow names this provider uses, from where each Airflow version keeps them.

Airflow 3 moved the authoring API to the Task SDK (``airflow.sdk``); Airflow 2.10 has it under
``airflow.models``, ``airflow.sensors`` and ``airflow.hooks``. Everything else imports from
here, so the provider imports on both. The type checker reads Airflow 3's names.
"""

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from airflow.sdk import BaseHook, BaseOperator, BaseSensorOperator, Context, PokeReturnValue
    from airflow.sdk.exceptions import AirflowException
else:
    try:  # Airflow 3.x
        from airflow.sdk import (
            BaseHook,
            BaseOperator,
            BaseSensorOperator,
            Context,
            PokeReturnValue,
        )
    except ImportError:  # Airflow 2.10
        from airflow.hooks.base import BaseHook
        from airflow.models import BaseOperator
        from airflow.sensors.base import BaseSensorOperator, PokeReturnValue
        from airflow.utils.context import Context
    # Airflow 3 re-exports the Task SDK's; Airflow 2.10 has only this one.
    from airflow.exceptions import AirflowException

from airflow.triggers.base import BaseTrigger, TriggerEvent

__all__ = [
    "AirflowException",
    "BaseHook",
    "BaseOperator",
    "BaseSensorOperator",
    "BaseTrigger",
    "Context",
    "PokeReturnValue",
    "TriggerEvent",
]
