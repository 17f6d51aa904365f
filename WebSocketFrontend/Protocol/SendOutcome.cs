using Grains.Interfaces;

namespace WebSocketFrontend.Protocol;

/// <summary>
/// What a send's result and a failed grain call mean to a client, the same on every transport and on the HTTP API:
/// the error code and message of a send that was not stored, and the <c>unavailable</c> answer.
/// </summary>
public static class SendOutcome
{
    /// <summary>The message of the <c>unavailable</c> error: storage or the cluster failed, and the caller may retry.</summary>
    public const string UnavailableMessage = "Storage or cluster unavailable; nothing was changed, retry later.";

    /// <summary>The error of a send to <paramref name="to"/> that was not stored; null when it was.</summary>
    public static ProtocolException? ErrorOf(SendResult result, int to)
    {
        return result.Status switch
        {
            SendStatus.NotFound => new ProtocolException(ErrorCodes.NotFound, $"No client has id {to}."),
            SendStatus.QueueFull => new ProtocolException(ErrorCodes.QueueFull, $"The queue of client {to} is full; retry later."),
            _ => null,
        };
    }

    /// <summary>The <c>delivered</c> field of a stored send: <c>online</c> when pushed to a session, else <c>queued</c>.</summary>
    public static string Delivered(SendResult result)
    {
        return result.Status == SendStatus.Online ? "online" : "queued";
    }
}
