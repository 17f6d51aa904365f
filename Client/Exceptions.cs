using System.Text.Json;

namespace ClientManagement.Client;

/// <summary>The error codes of the protocol.</summary>
public enum GatewayErrorCode
{
    /// <summary>A code this library does not know; see <see cref="GatewayException.WireCode"/>.</summary>
    Unknown,

    /// <summary><c>bad_request</c>: not JSON, wrong event, missing or ill-typed parameter.</summary>
    BadRequest,

    /// <summary><c>unknown_action</c>: the gateway does not know the action.</summary>
    UnknownAction,

    /// <summary><c>invalid_token</c>: the token does not belong to a registered client.</summary>
    InvalidToken,

    /// <summary><c>not_logged_in</c>: the action needs a login on this connection.</summary>
    NotLoggedIn,

    /// <summary><c>forbidden</c>: the client may not do this.</summary>
    Forbidden,

    /// <summary><c>too_large</c>: information or payload over its limit.</summary>
    TooLarge,

    /// <summary><c>queue_full</c>: the recipient's queue is at its bound.</summary>
    QueueFull,

    /// <summary><c>not_found</c>: no reachable client has that id.</summary>
    NotFound,

    /// <summary><c>rate_limited</c>: the connection exceeded its request rate.</summary>
    RateLimited,

    /// <summary><c>unavailable</c>: storage or cluster unreachable; nothing was changed, retry later.</summary>
    Unavailable,
}

/// <summary>A request the gateway answered with <c>error</c>; the connection stays open.</summary>
public class GatewayException : Exception
{
    /// <summary>Makes the exception of an <c>error</c> reply.</summary>
    public GatewayException(GatewayErrorCode code, string wireCode, string message, string? request)
        : base(message)
    {
        Code = code;
        WireCode = wireCode;
        Request = request;
    }

    /// <summary>The error code.</summary>
    public GatewayErrorCode Code { get; }

    /// <summary>The code as the gateway wrote it (<c>invalid_token</c>, ...).</summary>
    public string WireCode { get; }

    /// <summary>The action of the failed request, as the gateway echoed it.</summary>
    public string? Request { get; }

    /// <summary>The typed exception for the <c>parameters</c> of an <c>error</c> reply.</summary>
    public static GatewayException FromError(JsonElement parameters)
    {
        var wire = Text(parameters, "code") ?? "";
        var message = Text(parameters, "message") ?? wire;
        var request = Text(parameters, "request");
        return wire switch
        {
            "bad_request" => new BadRequestException(message, request),
            "unknown_action" => new UnknownActionException(message, request),
            "invalid_token" => new InvalidTokenException(message, request),
            "not_logged_in" => new NotLoggedInException(message, request),
            "forbidden" => new ForbiddenException(message, request),
            "too_large" => new TooLargeException(message, request),
            "queue_full" => new QueueFullException(message, request),
            "not_found" => new NotFoundException(message, request),
            "rate_limited" => new RateLimitedException(message, request),
            "unavailable" => new UnavailableException(message, request),
            _ => new GatewayException(GatewayErrorCode.Unknown, wire, message, request),
        };
    }

    private static string? Text(JsonElement parameters, string name) =>
        parameters.ValueKind == JsonValueKind.Object && parameters.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String
            ? value.GetString()
            : null;
}

/// <summary><c>bad_request</c>: not JSON, wrong event, missing or ill-typed parameter.</summary>
public sealed class BadRequestException(string message, string? request)
    : GatewayException(GatewayErrorCode.BadRequest, "bad_request", message, request);

/// <summary><c>unknown_action</c>: the gateway does not know the action.</summary>
public sealed class UnknownActionException(string message, string? request)
    : GatewayException(GatewayErrorCode.UnknownAction, "unknown_action", message, request);

/// <summary><c>invalid_token</c>: the token does not belong to a registered client (never did, rotated, revoked or deleted).</summary>
public sealed class InvalidTokenException(string message, string? request)
    : GatewayException(GatewayErrorCode.InvalidToken, "invalid_token", message, request);

/// <summary><c>not_logged_in</c>: the action needs a login on this connection.</summary>
public sealed class NotLoggedInException(string message, string? request)
    : GatewayException(GatewayErrorCode.NotLoggedIn, "not_logged_in", message, request);

/// <summary><c>forbidden</c>: the client may not do this on this gateway.</summary>
public sealed class ForbiddenException(string message, string? request)
    : GatewayException(GatewayErrorCode.Forbidden, "forbidden", message, request);

/// <summary><c>too_large</c>: information or payload over its limit.</summary>
public sealed class TooLargeException(string message, string? request)
    : GatewayException(GatewayErrorCode.TooLarge, "too_large", message, request);

/// <summary><c>queue_full</c>: the recipient's queue is at its bound; retry later.</summary>
public sealed class QueueFullException(string message, string? request)
    : GatewayException(GatewayErrorCode.QueueFull, "queue_full", message, request);

/// <summary><c>not_found</c>: no client the sender may reach has that id.</summary>
public sealed class NotFoundException(string message, string? request)
    : GatewayException(GatewayErrorCode.NotFound, "not_found", message, request);

/// <summary><c>rate_limited</c>: the connection exceeded its request rate; slow down.</summary>
public sealed class RateLimitedException(string message, string? request)
    : GatewayException(GatewayErrorCode.RateLimited, "rate_limited", message, request);

/// <summary><c>unavailable</c>: storage or cluster unreachable; nothing was changed, retry later.</summary>
public sealed class UnavailableException(string message, string? request)
    : GatewayException(GatewayErrorCode.Unavailable, "unavailable", message, request);

/// <summary>Why the gateway ended a login.</summary>
public enum LogoutReason
{
    /// <summary>A reason this library does not know; see <see cref="LoggedOutException.WireReason"/>.</summary>
    Unknown,

    /// <summary>The client asked to log out.</summary>
    Logout,

    /// <summary>The same client logged in on another connection.</summary>
    Takeover,

    /// <summary>The client was deleted.</summary>
    Deleted,

    /// <summary>An operator ended the session.</summary>
    Kicked,

    /// <summary>An operator revoked the token.</summary>
    Revoked,
}

/// <summary>
/// The gateway ended this connection's login (a <c>loggedOut</c> push): thrown by
/// <see cref="GatewayClient.ReadResponsesAsync"/> in order with the responses. The client does not log in again by itself.
/// </summary>
public sealed class LoggedOutException : Exception
{
    /// <summary>Makes the exception for a <c>loggedOut</c> reason as the gateway wrote it.</summary>
    public LoggedOutException(string wireReason)
        : base($"The gateway ended the login: {wireReason}.")
    {
        WireReason = wireReason;
        Reason = wireReason switch
        {
            "logout" => LogoutReason.Logout,
            "takeover" => LogoutReason.Takeover,
            "deleted" => LogoutReason.Deleted,
            "kicked" => LogoutReason.Kicked,
            "revoked" => LogoutReason.Revoked,
            _ => LogoutReason.Unknown,
        };
    }

    /// <summary>Why the login ended.</summary>
    public LogoutReason Reason { get; }

    /// <summary>The reason as the gateway wrote it.</summary>
    public string WireReason { get; }
}

/// <summary>
/// The connection was lost before a request was answered (the gateway may or may not have carried it out),
/// or it could not be made, or reconnection gave up.
/// </summary>
public sealed class GatewayConnectionException : Exception
{
    /// <summary>Makes the exception with a message.</summary>
    public GatewayConnectionException(string message)
        : base(message)
    {
    }

    /// <summary>Makes the exception with a message and its cause.</summary>
    public GatewayConnectionException(string message, Exception? innerException)
        : base(message, innerException)
    {
    }
}
