"""ID numbers: validated, encrypted at rest, indexed without decrypting, masked everywhere."""

import logging

import pytest
from cryptography.fernet import Fernet

from server.config import ConfigError
from server.security import (
    IdCipher,
    MaskingFilter,
    id_check_char,
    mask_id_number,
    mask_phone,
    validate_id_number,
    validate_phone,
)


def make_id(prefix17: str) -> str:
    return prefix17 + id_check_char(prefix17)


VALID = make_id("11010519491231002")  # the GB 11643 example number


def test_check_digit_of_the_standard_example():
    assert VALID == "11010519491231002X"
    assert validate_id_number(VALID) is None
    assert validate_id_number(VALID.lower()) is None


@pytest.mark.parametrize(
    "value,fragment",
    [
        ("1101051949123100", "18位"),
        ("110105194912310021", "校验位"),
        ("01010519491231002X", "18位"),
        (make_id("11010519491331002"), "出生日期"),
        (make_id("11010530001231002"), "出生日期"),
        ("", "18位"),
    ],
)
def test_invalid_id_numbers_get_chinese_reasons(value, fragment):
    assert fragment in validate_id_number(value)


def test_masking():
    assert mask_id_number(VALID) == "110***********002X"
    assert mask_phone("13812345678") == "138****5678"
    assert mask_id_number(None) is None
    assert validate_phone("13812345678") is None
    assert validate_phone("12812345678")
    assert validate_phone("1381234567")


def test_encryption_round_trip_and_rotation():
    old_key, new_key = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    old = IdCipher(old_key)
    token = old.encrypt(VALID.lower())
    assert VALID.encode() not in token
    assert old.decrypt(token) == VALID
    rotated = IdCipher(f"{new_key},{old_key}")
    assert rotated.decrypt(token) == VALID
    assert IdCipher(new_key).decrypt(rotated.rotate(token)) == VALID
    # The blind index survives rotation: uniqueness keeps working.
    assert rotated.index(VALID) == old.index(VALID.lower())
    assert old.index(VALID) != old.index(make_id("11010519491231003"))
    assert IdCipher(new_key).decrypt(token) is None


def test_bad_key_is_a_config_error():
    with pytest.raises(ConfigError, match="Fernet"):
        IdCipher("not-a-key")


def test_logs_never_show_an_id_number(caplog):
    logger = logging.getLogger("unionhub.test")
    logger.addFilter(MaskingFilter())
    with caplog.at_level(logging.INFO, logger="unionhub.test"):
        logger.info("binding %s to person %d", VALID, 7)
    assert VALID not in caplog.text
    assert "110***********002X" in caplog.text
