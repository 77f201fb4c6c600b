"""ServiceError: the one refusal of the service layer, in the HTTP API's error body."""

from policy_service.contract.parsing import MAX_ERRORS, BodyRefused
from policy_service.service.errors import ServiceError


def test_schema_messages_become_field_paths_with_a_one_line_message():
    error = ServiceError.invalid({"send": {"at": ["Not a valid datetime."]}, "history": {"0": {"at": ["Missing."]}}})
    assert error.as_dict() == {
        "code": 422, "status": "Unprocessable Entity",
        "message": "invalid request: send.at: Not a valid datetime. (and 1 more)",
        "errors": {"send.at": ["Not a valid datetime."], "history.0.at": ["Missing."]}}


def test_many_field_errors_are_bounded_as_over_http():
    error = ServiceError.invalid({"history": {str(i): {"at": ["Missing."]} for i in range(50)}})
    assert len(error.errors) == MAX_ERRORS + 1
    assert error.errors["_more"] == ["30 more fields with errors are not listed"]


def test_a_refused_body_keeps_its_status():
    error = ServiceError.refused(BodyRefused(400, "the body is not valid JSON", {"_request": ["not valid JSON"]}))
    assert (error.code, error.status, str(error)) == (400, "Bad Request", "the body is not valid JSON")
