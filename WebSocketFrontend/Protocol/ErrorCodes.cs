namespace WebSocketFrontend.Protocol;

/// <summary>The error codes of PROTOCOL.md, as they go on the wire.</summary>
public static class ErrorCodes
{
    public const string BadRequest = "bad_request";
    public const string UnknownAction = "unknown_action";
    public const string InvalidToken = "invalid_token";
    public const string NotLoggedIn = "not_logged_in";
    public const string Forbidden = "forbidden";
    public const string TooLarge = "too_large";
    public const string QueueFull = "queue_full";
    public const string NotFound = "not_found";
    public const string RateLimited = "rate_limited";
    public const string Unavailable = "unavailable";
}

/// <summary>A request that fails with one of the <see cref="ErrorCodes"/>; the socket stays open.</summary>
public sealed class ProtocolException(string code, string message) : Exception(message)
{
    public string Code { get; } = code;

    public static ProtocolException BadRequest(string message) => new(ErrorCodes.BadRequest, message);

    public static ProtocolException TooLarge(string message) => new(ErrorCodes.TooLarge, message);
}
