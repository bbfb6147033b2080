"""The publisher: areas own their families, background sources add to server families, and every swap is whole."""

from __future__ import annotations

import pytest

from sepm_exporter.runtime.publisher import Publisher


def _publisher() -> Publisher:
    return Publisher(lambda name: ())


def test_a_source_contribution_survives_the_area_rendering_its_family_again() -> None:
    publisher = _publisher()
    publisher.set_families({"sepm_certificate_not_after_timestamp_seconds": [(("SEPM1", "tokyo", "server.crt"), 1.0)]})
    publisher.contribute("api", {"sepm_certificate_not_after_timestamp_seconds": [(("SEPM1", "tokyo", "api:/admin/database"), 2.0)]})
    publisher.set_families({"sepm_certificate_not_after_timestamp_seconds": [(("SEPM1", "tokyo", "server.crt"), 3.0)]})
    publisher.publish()
    text = b"".join(publisher.published.parts).decode()
    assert 'file="server.crt"} 3.0' in text and 'file="api:/admin/database"} 2.0' in text and " 1.0" not in text
    publisher.contribute("api", {"sepm_certificate_not_after_timestamp_seconds": []})
    publisher.publish()
    assert "api:/admin/database" not in b"".join(publisher.published.parts).decode()


def test_only_server_families_take_contributions() -> None:
    with pytest.raises(ValueError, match="not a server certificate family"):
        _publisher().contribute("api", {"sepm_group_clients": []})


def test_publish_swaps_a_new_frozen_exposition_and_times_it() -> None:
    publisher = _publisher()
    before = publisher.published
    publisher.replace({"sepm_api_up": [(("SEPM1",), 1.0)]})
    assert publisher.published is before  # nothing changes for readers until the swap
    publisher.publish()
    assert publisher.published is not before and publisher.seconds >= 0.0
    assert b'sepm_api_up{server="SEPM1"} 1.0' in b"".join(publisher.published.parts)
