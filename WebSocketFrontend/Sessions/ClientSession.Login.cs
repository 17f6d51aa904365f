using System.Collections.Immutable;
using Grains.Interfaces;
using WebSocketFrontend.Hosting;
using WebSocketFrontend.Protocol;

namespace WebSocketFrontend.Sessions;

/// <summary>
/// The login of a connection: attaching to the client's mailbox, the online directory entry and its undo, renewal,
/// logout, and the end of the login however it comes (logout, a new login, the mailbox's word, the connection's end).
/// </summary>
public sealed partial class ClientSession
{
    /// <summary>
    /// Logs this connection in as <paramref name="client"/> and answers with the <c>logged</c> frame: any earlier login
    /// of the connection ends, the mailbox attaches it and hands over its queue, and the directory lists it. Pushes
    /// that race the login wait until the reply (and the queue's further pages) are queued.
    /// </summary>
    public async Task<Reply> LoginAsync(ClientSnapshot client, string digest, bool ackMode, ClientRequest request)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(request);
        await ForgetLoginAsync();

        var registration = new SessionRegistration(Id, _services.Frontend.Id, _services.Observer.Reference, ackMode);
        var mailbox = _services.Grains.Grain<IClientIdGrain>(client.Id);

        // Pushes that race this login wait until its reply is queued, so the queue comes first.
        BeginLogin();
        var queue = await mailbox.Attach(registration, _services.SessionValidity);
        HandedAtLogin(queue.IsEmpty ? 0 : queue[^1].Seq);
        var login = new SessionLogin(client.Id, digest, registration);
        _login = login;
        try
        {
            await _services.Directory.AddAsync(new OnlineEntry(Id, client.Id, _services.Frontend.Id));
        }
        catch (Exception ex) when (ex is not ProtocolException)
        {
            // Half a login is no login: the client hears 'unavailable' and its mailbox lets the session go.
            ClearLogin(login);
            await mailbox.Detach(Id);
            throw;
        }

        _services.Metrics.LoginQueueLength.Record(queue.Length);
        var pageLength = PageLength(queue, 0);
        var page = queue[..pageLength];
        var frame = Replies.Answer(request, "logged", (client, page), static (w, s) =>
        {
            w.WriteStartArray("queue"u8);
            foreach (var response in s.page)
            {
                ResponseJson.WriteObject(w, response);
            }

            w.WriteEndArray();
            w.WriteNumber("id"u8, s.client.Id);

            // Extension: the stored information, so a client that lost its own copy gets it back.
            w.WritePropertyName("information"u8);
            w.WriteRawValue(UnicodeText.SanitizeJson(s.client.Information.Json), skipInputValidation: true);
        });

        // Without acknowledgements a response is done once the frame carrying it is written; the mailbox
        // hears it once per page, so a long queue costs a few writes, and a connection that dies midway gets
        // at most a page again.
        var sessionId = Id;
        Func<Task>? Done(int end) => ackMode || end == 0 ? null : () => mailbox.Acknowledge(sessionId, queue[end - 1].Seq);
        return new Reply(frame, Done(pageLength), FollowingPages(queue, pageLength, Done));
    }

    /// <summary>Ends this connection's login at the client's request; false when it has none.</summary>
    public async Task<bool> LogoutAsync() => await ForgetLoginAsync();

    /// <summary>The login of this connection if it used the token of <paramref name="digest"/>; null otherwise.</summary>
    public SessionLogin? LoginWith(string digest) => _login is { } login && login.Digest == digest ? login : null;

    /// <summary>The client of <paramref name="login"/> moved to a new token: the login carries on with it, unless it ended meanwhile.</summary>
    public void Rotated(SessionLogin login, string nextDigest)
    {
        ArgumentNullException.ThrowIfNull(login);
        _ = Interlocked.CompareExchange(ref _login, login with { Digest = nextDigest }, login);
    }

    /// <summary>
    /// The mailbox logged this connection out (<paramref name="reason"/>: <c>takeover</c>, <c>deleted</c>…): it
    /// has forgotten the session already, so only the directory is told; the client hears <c>loggedOut</c>, and a
    /// connection taken over is closed.
    /// </summary>
    public void LoggedOutByMailbox(string reason)
    {
        if (_login is not { } login || !ClearLogin(login))
        {
            return;
        }

        LogLoggedOut(_services.Logger, Id, reason);
        _ = RemoveFromDirectoryAsync();
        TryPush(Replies.Write("loggedOut", null, reason, static (w, r) => w.WriteString("reason"u8, r)));
        if (reason == "takeover")
        {
            RequestClose(CloseReason.Normal, "logged in elsewhere");
        }
    }

    /// <summary>
    /// Renews the login with its mailbox, for <see cref="SessionServices.SessionValidity"/>; a mailbox that no longer
    /// knows the session, or does not answer within <paramref name="within"/>, means another login took it over.
    /// </summary>
    public async Task RenewAsync(TimeSpan within, CancellationToken cancellationToken)
    {
        if (_login is not { } login)
        {
            return;
        }

        if (!await ReattachAsync(login).WaitAsync(within, cancellationToken))
        {
            LoggedOutByMailbox("takeover");
        }
    }

    /// <summary>
    /// Renews <paramref name="login"/> at once, as the next renewal would: a mailbox that restarted (its silo died,
    /// or it was collected) knows no session until then, and refuses the login's acknowledgements meanwhile. True
    /// when the mailbox holds the login again; false when it does not (another login took over, or the client is
    /// gone), which this leaves to the next renewal to act on, so that a refused request changes nothing here.
    /// </summary>
    public Task<bool> ReattachAsync(SessionLogin login)
    {
        ArgumentNullException.ThrowIfNull(login);
        return _services.Grains.Grain<IClientIdGrain>(login.ClientId).Renew(login.Registration, _services.SessionValidity, DeliveredUpTo);
    }

    /// <summary>The connection ended: its login, if any, is forgotten by the mailbox and the directory.</summary>
    private async Task EndLoginAsync()
    {
        try
        {
            await ForgetLoginAsync();
        }
        catch (Exception ex)
        {
            // The mailbox stops pushing when the session's validity runs out; the directory entry goes with the lease.
            LogSessionCleanupFailed(_services.Logger, ex, Id);
        }
    }

    /// <summary>
    /// Clears the login, then tells the mailbox and the directory that it is over: the one way a login this
    /// connection still holds ends. False when there was none (or another caller ended it first).
    /// </summary>
    private async Task<bool> ForgetLoginAsync()
    {
        if (_login is not { } login || !ClearLogin(login))
        {
            return false;
        }

        await _services.Grains.Grain<IClientIdGrain>(login.ClientId).Detach(Id);
        await _services.Directory.RemoveAsync(Id);
        return true;
    }

    /// <summary>Clears the login if it is still <paramref name="login"/>; false when another login replaced it.</summary>
    private bool ClearLogin(SessionLogin login) => Interlocked.CompareExchange(ref _login, null, login) == login;

    private async Task RemoveFromDirectoryAsync()
    {
        try
        {
            await _services.Directory.RemoveAsync(Id);
        }
        catch (Exception ex)
        {
            // The frontend's next lease renewal does not bring it back, and a closed connection's entry goes with the lease.
            LogDirectoryRemoveFailed(_services.Logger, ex, Id);
        }
    }

    /// <summary>
    /// How many responses from <paramref name="start"/> make one page: at most <see cref="ProtocolOptions.LoginPageBytes"/>
    /// of them, and at least one, so that every page makes progress.
    /// </summary>
    private int PageLength(ImmutableArray<PendingResponse> queue, int start)
    {
        var end = start;
        long bytes = 0;
        while (end < queue.Length)
        {
            bytes += ResponseJson.MaxBytes(queue[end]);
            if (end > start && bytes > _options.LoginPageBytes)
            {
                break;
            }

            end++;
        }

        return end - start;
    }

    /// <summary>
    /// The responses a login's page left out, as <c>response</c> pushes in order, each page's last frame
    /// followed by <paramref name="done"/> of where it ends.
    /// </summary>
    private List<Reply>? FollowingPages(ImmutableArray<PendingResponse> queue, int start, Func<int, Func<Task>?> done)
    {
        if (start == queue.Length)
        {
            return null;
        }

        var frames = new List<Reply>(queue.Length - start);
        while (start < queue.Length)
        {
            var end = start + PageLength(queue, start);
            for (var i = start; i < end; i++)
            {
                var push = Replies.Write("response", null, queue[i], ResponseJson.Write);
                frames.Add(new Reply(push, i == end - 1 ? done(end) : null));
            }

            start = end;
        }

        return frames;
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not log socket {ConnectionId} out of its mailbox and the online directory")]
    private static partial void LogSessionCleanupFailed(ILogger logger, Exception exception, string connectionId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not remove session {SessionId} from the online directory")]
    private static partial void LogDirectoryRemoveFailed(ILogger logger, Exception exception, string sessionId);

    [LoggerMessage(Level = LogLevel.Information, Message = "Session {SessionId} logged out by its mailbox: {Reason}")]
    private static partial void LogLoggedOut(ILogger logger, string sessionId, string reason);
}
