"""Secrets Manager's rotation function of the cursor secrets: each invocation runs one of the four steps."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.data_classes import SecretsManagerEvent, event_source

from msp.clock import utc_now
from msp.cursor_rotation import rotate
from msp.storage.secret_versions import SecretsManagerVersions

logger = Logger()


@logger.inject_lambda_context
@event_source(data_class=SecretsManagerEvent)
def handler(event: SecretsManagerEvent, context) -> None:
    done = rotate(SecretsManagerVersions(event.secret_id), event.version_id, event.step, utc_now())
    logger.info(done, extra={"secret": event.secret_id, "version": event.version_id, "step": event.step})
