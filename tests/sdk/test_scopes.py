"""A downscoped user token (what the Apps proxy forwards in X-Forwarded-Access-Token) used by the
official SDK: the APIs its scopes cover answer, the others refuse it with the real text, which
the SDK raises as PermissionDenied."""

import pytest
from databricks.sdk.errors import PermissionDenied

from conftest import Control


def test_the_sdk_reaches_only_what_a_downscoped_token_covers(control: Control, pat_client) -> None:
    # Arrange
    token = control.mint_token("alice@example.com", scopes=["iam.current-user:read", "catalog.catalogs:read"])
    w = pat_client("alice", token=token)

    # Act
    me = w.current_user.me()
    catalogs = [c.name for c in w.catalogs.list()]
    with pytest.raises(PermissionDenied) as refused:
        list(w.schemas.list(catalog_name=catalogs[0]))

    # Assert
    assert me.user_name == "alice@example.com"
    assert catalogs
    assert "Provided OAuth token does not have required scopes: catalog.schemas:read" in str(refused.value)
