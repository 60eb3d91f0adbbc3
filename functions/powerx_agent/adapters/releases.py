"""Lambda versions and aliases of the deployed functions (``powerx-agent release``): the one place
that calls the Lambda control plane. Returns plain data; a missing function or alias is ``None``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from powerx_agent.adapters.aws import error_code


@dataclass(frozen=True)
class FunctionVersion:
    version: int
    description: str
    last_modified: str
    code_sha256: str


class LambdaReleases:
    def __init__(self, lam: Any) -> None:
        self._lambda = lam

    def versions(self, function_name: str) -> list[FunctionVersion] | None:
        """Published versions (not ``$LATEST``), oldest first; None when the function does not exist."""
        found = []
        try:
            for page in self._lambda.get_paginator("list_versions_by_function").paginate(FunctionName=function_name):
                for item in page.get("Versions", []):
                    if item["Version"] != "$LATEST":
                        found.append(FunctionVersion(int(item["Version"]), item.get("Description") or "",
                                                     str(item.get("LastModified") or ""), item.get("CodeSha256") or ""))
        except Exception as exc:  # noqa: BLE001
            if error_code(exc) == "ResourceNotFoundException":
                return None
            raise
        return sorted(found, key=lambda v: v.version)

    def alias_version(self, function_name: str, alias: str) -> int | None:
        """The version the alias points at (its primary version), or None when there is no such alias."""
        try:
            return int(self._lambda.get_alias(FunctionName=function_name, Name=alias)["FunctionVersion"])
        except Exception as exc:  # noqa: BLE001
            if error_code(exc) == "ResourceNotFoundException":
                return None
            raise

    def point_alias(self, function_name: str, alias: str, version: int, description: str) -> None:
        """Move the alias to ``version`` with all of its traffic (a weighted routing config is removed)."""
        self._lambda.update_alias(FunctionName=function_name, Name=alias, FunctionVersion=str(version),
                                  Description=description, RoutingConfig={"AdditionalVersionWeights": {}})
