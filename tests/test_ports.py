"""The ports of ground/ports.py: a port nobody installed says which; a typo is refused."""
import pytest

from ground import ports


@pytest.fixture
def bare():
    saved = ports.installed()
    ports.install(**{name: None for name in ports.PORTS})
    yield
    ports.install(**{name: saved.get(name) for name in ports.PORTS})


def test_a_port_not_installed_names_itself(bare):
    with pytest.raises(ports.PortNotInstalled, match="port 'campaigns' is not installed.*bot/ports.py::install"):
        ports.campaigns()


def test_an_unknown_port_is_refused():
    with pytest.raises(ValueError, match="no such port: inboxx"):
        ports.install(inboxx=object())


def test_the_edge_installs_every_port(bare):
    from bot import ports as edge

    edge.install()
    assert set(ports.installed()) == set(ports.PORTS)
    assert ports.campaigns().create_announcement  # bot/campaigns.py


def test_the_clients_errors_are_the_ports_errors():
    from bot.outbound.clients import ApiError, NotConfigured

    assert issubclass(ApiError, ports.PlatformError) and issubclass(NotConfigured, ports.PlatformError)
