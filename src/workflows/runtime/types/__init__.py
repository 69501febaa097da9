"""Records of what a run did, named as in LlamaIndex Workflows (a compatibility package).

``results`` holds what one step invocation produced, ``ticks`` the run's log of events
added and step invocations finished. Clients such as ``llama-index-utils-workflow`` read
them (through ``ExternalContext._tick_log``) to draw a run; this engine's run loop does not
use them. Only leaf modules are imported here, so the run loop stays free to change.
"""

TICK_LOG_KEY = "workflows.runtime.types.ticks:log"
"""Where a run's tick log lives in its ``RunInfo.scratch`` (written by the tick recorder).

Here, not in ``ticks``, because importing ``ticks`` turns the log on: the Context's
outside face reads the log through this key without doing so."""
