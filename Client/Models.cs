using System.Text.Json;

namespace ClientManagement.Client;

/// <summary>A response addressed to the logged-in client: from its queue at login, or pushed live.</summary>
/// <param name="Seq">The per-client sequence number; increases with every response, so it orders them and tells copies apart.</param>
/// <param name="From">The sending client's id, or null when a back end sent it.</param>
/// <param name="At">When the gateway accepted the response.</param>
/// <param name="Payload">The JSON the sender sent.</param>
public sealed record PendingResponse(long Seq, int? From, DateTimeOffset At, JsonElement Payload);

/// <summary>The answer to <see cref="GatewayClient.RegisterAsync"/>.</summary>
/// <param name="Id">The new client's id.</param>
/// <param name="Token">The client's secret token; the gateway shows it only this once.</param>
public sealed record Registration(int Id, string Token);

/// <summary>The answer to <see cref="GatewayClient.LoginAsync"/>; the queued responses arrive through <see cref="GatewayClient.ReadResponsesAsync"/>.</summary>
/// <param name="Id">The logged-in client's id.</param>
/// <param name="Information">The client's stored information, or an undefined element when the gateway sent none.</param>
public sealed record LoginResult(int Id, JsonElement Information);

/// <summary>How the gateway took a response in.</summary>
public enum DeliveryStatus
{
    /// <summary>Pushed at once to the recipient's live session.</summary>
    Online,

    /// <summary>Stored in the recipient's queue until it logs in.</summary>
    Queued,
}

/// <summary>The answer to <see cref="GatewayClient.SendAsync"/>.</summary>
/// <param name="Seq">The response's sequence number in the recipient's queue.</param>
/// <param name="Delivered">Whether it went out live or was queued.</param>
public sealed record SendResult(long Seq, DeliveryStatus Delivered);

/// <summary>One page of the online list.</summary>
/// <param name="Clients">Online client ids, ascending.</param>
/// <param name="Next">The cursor to pass as <c>after</c> for the next page, or null after the last one.</param>
public sealed record OnlinePage(IReadOnlyList<int> Clients, int? Next);

/// <summary>Where a <see cref="GatewayClient"/>'s connection stands.</summary>
public enum GatewayConnectionState
{
    /// <summary>Not connected yet, or closed by <see cref="GatewayClient.DisposeAsync"/>.</summary>
    Disconnected,

    /// <summary>Connected; requests go out at once.</summary>
    Connected,

    /// <summary>The connection was lost; the client is waiting out a back-off before the next attempt.</summary>
    Reconnecting,

    /// <summary>Reconnection gave up (see <see cref="ReconnectPolicy.MaxAttempts"/>); every call fails.</summary>
    Failed,
}

/// <summary>A change of <see cref="GatewayClient.State"/>.</summary>
public sealed class ConnectionStateChangedEventArgs : EventArgs
{
    /// <summary>Makes the arguments of a change.</summary>
    public ConnectionStateChangedEventArgs(GatewayConnectionState state, int attempt, TimeSpan delay, Exception? error)
    {
        State = state;
        Attempt = attempt;
        Delay = delay;
        Error = error;
    }

    /// <summary>The new state.</summary>
    public GatewayConnectionState State { get; }

    /// <summary>For <see cref="GatewayConnectionState.Reconnecting"/>: the attempt about to be made, from 0.</summary>
    public int Attempt { get; }

    /// <summary>For <see cref="GatewayConnectionState.Reconnecting"/>: the back-off before that attempt, already started.</summary>
    public TimeSpan Delay { get; }

    /// <summary>Why the connection was lost or the last attempt failed, when known.</summary>
    public Exception? Error { get; }
}
