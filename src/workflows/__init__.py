"""An observability-first workflow engine: steps that exchange events, traced with OpenTelemetry.

``from workflows import Context, Workflow, step`` is the whole API of a simple workflow;
events live in ``workflows.events`` and errors in ``workflows.errors``.
"""

from pkgutil import extend_path

__path__ = extend_path(__path__, __name__)

from workflows.context import Context  # noqa: E402
from workflows.decorators import catch_error, step  # noqa: E402
from workflows.workflow import Workflow  # noqa: E402

__all__ = ["Context", "Workflow", "catch_error", "step"]
