"""PowerX Agent Taskflow: event-driven automation engine on AWS.

Layout (see docs/architecture.md): pure domain in ``strategy`` and ``taskflow`` (no boto3, no requests),
AWS and HTTP access only in ``adapters``, thin Lambda entry points in ``handlers``, the embedded
local runtime in ``local`` and the ``powerx-agent`` console script in ``cli``.
"""

__version__ = "0.1.0"
