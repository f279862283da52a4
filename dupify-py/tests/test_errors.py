"""The DupifyError hierarchy: every hosted code maps to a subclass, instances carry `.code`."""

import pytest

import dupify
from dupify import errors


def test_hierarchy_and_codes():
    cases = {
        "invalid_parameter": (dupify.InvalidRequestError, ValueError, 400),
        "missing_parameter": (dupify.InvalidRequestError, ValueError, 400),
        "unsupported_format": (dupify.ImageError, ValueError, 415),
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
