import pytest

from tests import factories


@pytest.fixture
def org(db):
    return factories.make_organization("Acme")


@pytest.fixture
def other_org(db):
    return factories.make_organization("Globex")


@pytest.fixture
def control_plane(org):
    return factories.make_control_plane(org, name="payments", region="us")


@pytest.fixture
def other_control_plane(other_org):
    return factories.make_control_plane(other_org, name="globex-internal", region="us")


@pytest.fixture
def org_admin(org):
    return factories.make_role_user(org, "org_admin")


@pytest.fixture
def other_org_admin(other_org):
    return factories.make_role_user(other_org, "org_admin")


@pytest.fixture
def login(client):
    """`login(user)` → a Django test client logged in as that user."""

    def _login(user):
        client.force_login(user)
        return client

    return _login
