"""The DupifyError hierarchy: every hosted code maps to a subclass, instances carry `.code`."""

import pytest

import dupify
from dupify import errors


def test_hierarchy_and_codes():
    cases = {
        "invalid_parameter": (dupify.InvalidRequestError, ValueError, 400),
        "missing_parameter": (dupify.InvalidRequestError, ValueError, 400),
        "unsupported_format": (dupify.ImageError, ValueError, 422),
        "not_found": (dupify.NotFoundError, LookupError, 404),
        "rate_limit_exceeded": (dupify.RateLimitError, dupify.DupifyError, 429),
    }
    for code, (cls, base, status) in cases.items():
        e = errors._from_native(code, "msg", status, None, None)
        assert type(e) is cls and isinstance(e, base) and isinstance(e, dupify.DupifyError)
        assert (e.code, e.http_status, str(e)) == (code, status, "msg")
        assert e.to_dict() == {"error": {"code": code, "message": "msg"}}
    unknown = errors._from_native("brand_new_code", "m", 500, None, None)
    assert type(unknown) is dupify.DupifyError and unknown.code == "brand_new_code"


def test_every_code_of_the_rust_table_has_a_class_and_no_class_has_a_code_the_table_lacks():
    from dupify import _dupify

    table = dict(_dupify.error_codes())
    assert len(table) == len(_dupify.error_codes()), "a code twice in the table"
    assert set(errors._BY_CODE) == set(table)
    # Each subclass documents the codes it stands for.
    for code, cls in errors._BY_CODE.items():
        assert code in (cls.__doc__ or ""), (code, cls.__name__)


def test_native_errors_arrive_as_typed_exceptions():
    with pytest.raises(dupify.InvalidRequestError) as e:
        dupify.Extractor(device="tpu")
    assert e.value.code == "invalid_parameter" and "tpu" in str(e.value)
    with pytest.raises(dupify.ModelError) as e:
        dupify.Extractor("/nonexistent/dupify-model")
    assert e.value.code == "model_error" and e.value.http_status == 500
    with pytest.raises(dupify.InvalidRequestError) as e:
        dupify.Extractor(threads=0)
    assert e.value.code == "invalid_parameter"
    with pytest.raises(dupify.InvalidRequestError) as e:
        dupify.Extractor(max_pixels=0)
    assert e.value.code == "invalid_parameter"
    with pytest.raises(dupify.InvalidRequestError) as e:
        dupify.Extractor(color_options={"num_colours": 3})
    assert "unknown field `num_colours`" in str(e.value)
    with pytest.raises(dupify.InvalidRequestError):
        dupify.Extractor(color_options={"num_colors": 99})
    with pytest.raises(dupify.InvalidRequestError):
        dupify.Extractor(resize_mode="stretch")
