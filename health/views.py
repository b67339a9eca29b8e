from django.http import HttpRequest, JsonResponse


def liveness(request: HttpRequest) -> JsonResponse:
    """Cheap liveness probe: the process answers; no dependency is touched."""
    return JsonResponse({"status": "ok"})
