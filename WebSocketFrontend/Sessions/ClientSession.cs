using System.Collections.Immutable;
using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using System.Threading.Channels;
using Grains.Interfaces;
using WebSocketFrontend.Hosting;
using WebSocketFrontend.Protocol;

namespace WebSocketFrontend.Sessions;

/// <summary>
/// One client connection, whatever transport carries it: a receive loop that answers requests in order, and a
/// send loop that is the transport's only writer, fed by a bounded outbox. It owns the connection's login (see
/// the other part of this class), the pushes and their claims, the request budget and the timeouts that are no
/// transport's own.
/// </summary>
public sealed partial class ClientSession : IDisposable
{
    private readonly IClientTransport _transport;
    private readonly SessionServices _services;
    private readonly ProtocolOptions _options;
    private readonly Channel<Outgoing> _outbox;
    private readonly CancellationTokenSource _abort = new();
    private readonly RequestBudget _budget;

    // Disposed once the socket authenticates, so that an idle logged-in socket keeps no timer for it.
    private ITimer? _authenticationTimer;
    private ITimer? _closeDeadline;
    private int _closing;
    private volatile SessionLogin? _login;

    // Bytes of the frames in the outbox and the one being written: bounded by Protocol:OutboxBytes.
    private long _outboxBytes;

    // The rate_limited answers (and pings over the budget) of the current window; the receive loop's alone.
    private int _rateLimited;
    private long _rateLimitedSince;
    private bool _closeForRateLimit;

    // The delivery whose deadline the session's one deadline timer watches (made on the first push), and when that
    // timer is due (a TimeProvider timestamp; long.MaxValue when it is not armed); guarded by the lock.
    private readonly Lock _deadlineLock = new();
    private Delivery? _watched;
    private ITimer? _deliveryDeadline;
    private long _deadlineTimerDue = long.MaxValue;

    // Pushes wait while a login is answered, so that no response overtakes the 'logged' frame.
    private TaskCompletionSource _loginGate = CompletedGate();

    // The highest seq the current login has handed to the outbox (its queue, then pushes), the highest the send
    // loop took (DeliveredUpTo), and which login they belong to; guarded by the lock.
    private readonly Lock _handedLock = new();
    private long _handedUpTo;
    private long _deliveredUpTo;
    private long _handedGeneration;

    /// <param name="transport">What carries the frames; bound to this session here.</param>
    /// <param name="services">What every session shares.</param>
    public ClientSession(IClientTransport transport, SessionServices services)
    {
        _transport = transport;
        _services = services;
        _options = services.Options;
        Id = NewConnectionId();
        _outbox = Channel.CreateBounded<Outgoing>(new BoundedChannelOptions(_options.OutboxCapacity)
        {
            SingleReader = true,
            FullMode = BoundedChannelFullMode.Wait,
        });
        _budget = new RequestBudget(_options.RequestsPerSecond, _options.RequestBurst, services.Time);
        _authenticationTimer = services.Time.CreateTimer(
            static s => ((ClientSession)s!).OnAuthenticationTimeout(),
            this, _options.AuthenticationTimeout, Timeout.InfiniteTimeSpan);
        transport.Bind(this);
    }

    /// <summary>The client's address (after trusted proxies), which per-address budgets are charged to.</summary>
    public System.Net.IPAddress? RemoteAddress => _transport.RemoteAddress;

    /// <summary>Writes this session's frames in its transport's format; a reply to a request is routed by that request's context.</summary>
    public ReplyWriter Replies => _transport.Replies;

    /// <summary>The session id (the directory's and the mailbox's name for this connection): 128 random bits, base64url.</summary>
    public string Id { get; }

    /// <summary>The client logged in on this socket, if any.</summary>
    public int? ClientId => _login?.ClientId;

    /// <summary>The login of this socket, if any: its client and how its mailbox knows it.</summary>
    public SessionLogin? Login => _login;

    /// <summary>The token of this socket's last <c>send</c>, hashed; read and written by the receive loop alone.</summary>
    public SenderToken? SenderToken { get; set; }

    /// <summary>
    /// Bytes queued for this socket and not yet written, held to <see cref="ProtocolOptions.OutboxBytes"/> (a frame
    /// that would go over is refused; it may show here for the instant before it is taken back).
    /// </summary>
    public long OutboxBytes => Interlocked.Read(ref _outboxBytes);

    /// <summary>Serves the connection until it closes; never throws for anything the peer does.</summary>
    public async Task RunAsync(CancellationToken requestAborted)
    {
        using var aborted = requestAborted.Register(static s => ((ClientSession)s!).Abort(), this);
        var sending = SendLoopAsync();
        try
        {
            await ReceiveLoopAsync();
        }
        catch (Exception ex) when (ex is ConnectionLostException or OperationCanceledException)
        {
            // The peer vanished or the socket was aborted: nothing left to answer.
            LogReceiveEnded(_services.Logger, Id, ex.Message);
        }
        finally
        {
            RequestClose(CloseReason.Normal, "closing");
            await EndLoginAsync();
            await sending;
            await _transport.FinishAsync(_abort.Token);
        }
    }

    /// <summary>Starts a close handshake; the socket is aborted if it does not finish within the close timeout.</summary>
    public void RequestClose(CloseReason status, string reason)
    {
        if (Interlocked.Exchange(ref _closing, 1) != 0)
        {
            return;
        }

        _closeDeadline = _services.Time.CreateTimer(static s => ((ClientSession)s!).Abort(), this, _options.CloseTimeout, Timeout.InfiniteTimeSpan);
        if (!_outbox.Writer.TryWrite(Outgoing.Close(status, reason)))
        {
            // The outbox is full: the peer is not reading, so it gets no handshake.
            Abort();
        }

        _outbox.Writer.TryComplete();
    }

    /// <summary>
    /// Queues a frame without waiting; a peer too slow to take it is closed. False when the frame was not
    /// queued, so a mailbox keeps the responses it carried.
    /// </summary>
    public bool TryPush(byte[] frame, TaskCompletionSource<bool>? written = null) => TryPush(new Outgoing(frame, written));

    private bool TryPush(Outgoing item)
    {
        var frame = item.Frame!;
        if (!TryReserve(frame.Length))
        {
            return false;
        }

        if (_outbox.Writer.TryWrite(item))
        {
            return true;
        }

        Release(frame.Length);

        if (Volatile.Read(ref _closing) == 0)
        {
            LogSlowPeer(_services.Logger, Id);
            RequestClose(CloseReason.PolicyViolation, "too slow");
        }

        return false;
    }

    /// <summary>Holds pushes back until <see cref="EndLogin"/>: the login's reply must go out first.</summary>
    public void BeginLogin() => _loginGate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Releases the pushes held by <see cref="BeginLogin"/>.</summary>
    public void EndLogin() => _loginGate.TrySetResult();

    /// <summary>
    /// Writes pushed responses behind everything already queued for the socket, answering within
    /// <paramref name="timeout"/>: true once the send loop has begun writing them, false when none of
    /// them will ever be written.
    /// </summary>
    /// <remarks>
    /// The mailbox stores what this reports as not written and delivers it again later, so the answer
    /// must be single. The frames of one delivery share a <see cref="Delivery"/>: the send loop claims
    /// it before writing the first of them, and a deadline (or a failure) withdraws it unless already
    /// claimed. Whichever comes first wins: a withdrawn delivery is skipped by the send loop, and a
    /// claimed one counts as written (should the socket die while writing it, it dies as any
    /// connection does after a write). A peer that let the deadline pass is too slow and is closed
    /// with 1008.
    /// </remarks>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    public async ValueTask<bool> DeliverAsync(IReadOnlyList<byte[]> frames, TimeSpan timeout)
    {
        var deadline = _services.Time.GetTimestamp() + (long)(timeout.TotalSeconds * _services.Time.TimestampFrequency);
        try
        {
            await _loginGate.Task.WaitAsync(timeout, _services.Time);
        }
        catch (TimeoutException)
        {
            return false;
        }

        if (frames.Count == 0)
        {
            return true;
        }

        var delivery = new Delivery();

        // Completed by the send loop once the last frame is written (or by the deadline): what follows here, and the
        // deliverer's own continuation up to its answer, runs on that thread rather than as one more thread-pool item
        // per push. It is short and takes no lock the send loop holds.
        var written = new TaskCompletionSource<bool>();
        for (var i = 0; i < frames.Count; i++)
        {
            if (!TryPush(new Outgoing(frames[i], i == frames.Count - 1 ? written : null, Delivery: delivery)))
            {
                // The outbox is full (the socket is closing for it) or closed: the frames queued so far are withdrawn too.
                return !delivery.TryWithdraw();
            }
        }

        var left = _services.Time.GetElapsedTime(_services.Time.GetTimestamp(), deadline) is var remaining && remaining > TimeSpan.Zero
            ? remaining
            : TimeSpan.Zero;
        delivery.Watch(written, deadline);
        if (TryWatch(delivery, left))
        {
            // The session's deadline timer watches this delivery: no timer is made for it.
            bool done;
            try
            {
                done = await written.Task;
            }
            finally
            {
                Unwatch(delivery);
            }

            return done || (delivery.TimedOut ? !WithdrawTooLate(delivery) : !delivery.TryWithdraw());
        }

        // Another delivery has the session's deadline timer (a mailbox delivers one batch at a time, so this is rare).
        try
        {
            if (await written.Task.WaitAsync(left, _services.Time))
            {
                return true;
            }
        }
        catch (TimeoutException)
        {
            return !WithdrawTooLate(delivery);
        }

        // The send loop ended before the last frame: unwritten unless it had begun on them.
        return !delivery.TryWithdraw();
    }

    /// <summary>
    /// The highest sequence number this login has given the socket for good: its queue at login (ahead of every
    /// push in the outbox), then every push the send loop took. The mailbox hears it at each renewal, so that a
    /// new activation resumes behind it.
    /// </summary>
    public long DeliveredUpTo
    {
        get
        {
            lock (_handedLock)
            {
                return _deliveredUpTo;
            }
        }
    }

    /// <summary>
    /// Writes pushed responses that this login has not had yet, as <see cref="DeliverAsync"/> does: true when the
    /// socket has them all (those it had before count as had), false when none of them will be written.
    /// </summary>
    /// <remarks>
    /// Within one login a seq reaches the socket once, in ascending order, whatever happens to the mailbox:
    /// a mailbox that lost its silo comes back knowing only its stored queue, and in ack mode that queue
    /// still holds everything pushed and not yet acknowledged. The renewal tells it how far this login
    /// got, and this check catches what still overlaps (a push of the old activation that was on its way
    /// when the renewal read the mark). The mark is taken after the login gate, so a push that races a
    /// login is judged against that login's queue, and atomically, so two deliveries never both pass one
    /// seq. A push overlapping one still waiting in the outbox is refused whole ("not written"): whether
    /// the waiting one will be written is not known yet, and the mailbox pushes again at the next renewal.
    /// A seq below the mark that this login never had cannot come: a mailbox pushes its queue in order
    /// behind what the session had, and a new activation numbers above everything before it.
    /// </remarks>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    public async ValueTask<bool> DeliverResponsesAsync(ImmutableArray<PendingResponse> responses, TimeSpan timeout)
    {
        var started = _services.Time.GetTimestamp();
        try
        {
            await _loginGate.Task.WaitAsync(timeout, _services.Time);
        }
        catch (TimeoutException)
        {
            return false;
        }

        ImmutableArray<PendingResponse> fresh;
        long before;
        long generation;
        long last = 0;
        lock (_handedLock)
        {
            (before, generation) = (_handedUpTo, _handedGeneration);
            if (responses.IsEmpty || responses[0].Seq > before)
            {
                fresh = responses;
            }
            else
            {
                var (had, waiting) = (_deliveredUpTo, before);
                if (responses.Any(r => r.Seq > had && r.Seq <= waiting))
                {
                    return false;
                }

                fresh = [.. responses.Where(r => r.Seq > waiting)];
            }

            if (!fresh.IsEmpty)
            {
                last = HighestSeq(fresh);
                _handedUpTo = Math.Max(before, last);
            }
        }

        if (fresh.IsEmpty)
        {
            return true;
        }

        var frames = new byte[fresh.Length][];
        for (var i = 0; i < frames.Length; i++)
        {
            frames[i] = Replies.Write("response", null, fresh[i], ResponseJson.Write);
        }

        // The time the login gate took counts: the mailbox waits for one answer within the timeout.
        var left = timeout - _services.Time.GetElapsedTime(started);
        var delivered = left > TimeSpan.Zero && await DeliverAsync(frames, left);
        lock (_handedLock)
        {
            if (_handedGeneration == generation)
            {
                if (delivered)
                {
                    _deliveredUpTo = Math.Max(_deliveredUpTo, last);
                }
                else if (_handedUpTo == last)
                {
                    // None of them will be written: they may come again, unless a later delivery went past them meanwhile.
                    _handedUpTo = before;
                }
            }
        }

        if (delivered)
        {
            _services.Metrics.CountPushed(frames.Length);
        }

        return delivered;
    }

    /// <summary>The highest seq of a push, without the enumerator LINQ would box on every delivery.</summary>
    private static long HighestSeq(ImmutableArray<PendingResponse> responses)
    {
        var highest = long.MinValue;
        foreach (var response in responses)
        {
            highest = Math.Max(highest, response.Seq);
        }

        return highest;
    }

    /// <summary>A login hands the socket its queue (pushes wait at the login gate meanwhile): the marks start again from its last seq.</summary>
    private void HandedAtLogin(long upTo)
    {
        lock (_handedLock)
        {
            _handedUpTo = upTo;
            _deliveredUpTo = upTo;
            _handedGeneration++;
        }
    }

    /// <summary>A delivery's deadline passed: true when it was withdrawn (and the peer, too slow, is closed), false when the send loop had claimed it.</summary>
    private bool WithdrawTooLate(Delivery delivery)
    {
        if (!delivery.TryWithdraw())
        {
            return false;
        }

        LogSlowPeer(_services.Logger, Id);
        RequestClose(CloseReason.PolicyViolation, "too slow");
        return true;
    }

    /// <summary>Gives <paramref name="delivery"/> the session's deadline timer, due in <paramref name="left"/>; false while another delivery has it.</summary>
    private bool TryWatch(Delivery delivery, TimeSpan left)
    {
        lock (_deadlineLock)
        {
            if (_watched is not null)
            {
                return false;
            }

            _watched = delivery;
            _deliveryDeadline ??= _services.Time.CreateTimer(
                static s => ((ClientSession)s!).OnDeliveryDeadline(), this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);

            // A timer already due by this deadline serves it: firing early, it re-arms for the rest. The timer is set
            // only then, not at every push and every completion, which kept the runtime's timer lock on the push path.
            if (_deadlineTimerDue > delivery.Deadline)
            {
                _deliveryDeadline.Change(left, Timeout.InfiniteTimeSpan);
                _deadlineTimerDue = delivery.Deadline;
            }

            return true;
        }
    }

    /// <summary>The delivery is over; the timer stays armed and, if nothing is watched when it fires, does nothing.</summary>
    private void Unwatch(Delivery delivery)
    {
        lock (_deadlineLock)
        {
            if (_watched == delivery)
            {
                _watched = null;
            }
        }
    }

    /// <summary>The deadline timer fired: the watched delivery, once its deadline has passed, stops waiting for the send loop.</summary>
    private void OnDeliveryDeadline()
    {
        Delivery? expired;
        lock (_deadlineLock)
        {
            _deadlineTimerDue = long.MaxValue;
            if (_watched is not { } delivery)
            {
                return;
            }

            var remaining = _services.Time.GetElapsedTime(_services.Time.GetTimestamp(), delivery.Deadline);
            if (remaining > TimeSpan.Zero)
            {
                // Fired for an earlier delivery, or a little early: wait for this one's own deadline.
                _deliveryDeadline!.Change(remaining, Timeout.InfiniteTimeSpan);
                _deadlineTimerDue = delivery.Deadline;
                return;
            }

            expired = delivery;
        }

        // Outside the lock: the deliverer's continuation runs inline from here.
        expired.Expire();
    }

    /// <summary>The socket registered, logged in or passed a token check: the authentication deadline no longer applies.</summary>
    public void Authenticated() => Interlocked.Exchange(ref _authenticationTimer, null)?.Dispose();

    public void Abort()
    {
        _abort.Cancel();
        _transport.Abort();
    }

    public void Dispose()
    {
        Interlocked.Exchange(ref _authenticationTimer, null)?.Dispose();
        _closeDeadline?.Dispose();
        lock (_deadlineLock)
        {
            _deliveryDeadline?.Dispose();
        }

        _transport.Dispose();
        _abort.Dispose();
    }

    private async Task ReceiveLoopAsync()
    {
        while (true)
        {
            using var message = await _transport.ReceiveAsync(_abort.Token);
            if (message.Kind == InboundKind.Closed)
            {
                return;
            }

            if (message.Kind == InboundKind.TooLarge)
            {
                await RefuseOversizedAsync(message.Context);
                return;
            }

            var reply = await AnswerAsync(message);
            var enqueued = await EnqueueAsync(reply);
            for (var i = 0; enqueued && i < (reply.FollowedBy?.Count ?? 0); i++)
            {
                // Behind the reply and before any push that waits for the login: the rest of a login's queue.
                enqueued = await EnqueueAsync(reply.FollowedBy![i]);
            }

            EndLogin();
            if (!enqueued)
            {
                return;
            }

            if (_closeForRateLimit)
            {
                ClosePolicyViolation("rate_limit", "request rate exceeded");
                return;
            }
        }
    }

    private async Task RefuseOversizedAsync(object? context)
    {
        var error = Replies.Error(ErrorCodes.TooLarge, $"The message is larger than {_options.MaxMessageBytes} bytes.", null, null, context);
        await EnqueueAsync(new Reply(error));
        RequestClose(CloseReason.TooBig, "message too big");
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<Reply> AnswerAsync(InboundMessage message)
    {
        if (message.Kind == InboundKind.Refused)
        {
            var refusal = message.Error!;
            return Replies.Error(refusal.Code, refusal.Message, refusal.Action, refusal.RequestIdJson, message.Context);
        }

        // Every message counts against the budget, garbage included; it is parsed first so that even
        // a refusal echoes what could be read of it.
        ClientRequest? request;
        RequestError? error;
        bool parsed;
        if (message.Kind == InboundKind.Envelope)
        {
            parsed = RequestParser.TryParse(message.Envelope, out request, out error);
        }
        else
        {
            (request, error) = (message.Request, message.Error);
            parsed = request is not null;
        }

        using (request)
        {
            if (request is not null)
            {
                request.Context = message.Context;
            }

            if (!_budget.TryTake())
            {
                _closeForRateLimit |= RateLimitedTooOften();
                return Replies.Error(ErrorCodes.RateLimited, "Too many requests on this connection; slow down.",
                    request?.Action ?? error?.Action, request?.RequestIdJson ?? error?.RequestIdJson, message.Context);
            }

            if (parsed)
            {
                return await _services.Handler.HandleAsync(this, request!, _abort.Token);
            }

            _services.Metrics.CountRequest("invalid", error!.Code);
            return Replies.Error(error.Code, error.Message, error.Action, error.RequestIdJson, message.Context);
        }
    }

    /// <summary>
    /// A message the transport handled itself (a WebSocket ping or pong, which the WebSocket has answered already):
    /// it costs a request from the budget, and one over the budget counts as a <c>rate_limited</c> answer.
    /// Called on the receive loop, inside the transport's read.
    /// </summary>
    public void ChargeTransportMessage()
    {
        if (!_budget.TryTake() && RateLimitedTooOften())
        {
            ClosePolicyViolation("rate_limit", "request rate exceeded");
        }
    }

    /// <summary>Counts one answer over the budget; true once the window holds more than the setting allows.</summary>
    private bool RateLimitedTooOften()
    {
        var now = _services.Time.GetTimestamp();
        if (_rateLimited == 0 || _services.Time.GetElapsedTime(_rateLimitedSince, now) > _options.RateLimitedWindow)
        {
            _rateLimitedSince = now;
            _rateLimited = 0;
        }

        return ++_rateLimited > _options.MaxRateLimitedBeforeClose;
    }

    /// <summary>Closes with 1008 (policy violation) for one of the per-connection limits, counted by <paramref name="limit"/>.</summary>
    public void ClosePolicyViolation(string limit, string reason)
    {
        if (Volatile.Read(ref _closing) != 0)
        {
            return;
        }

        _services.Metrics.CountPolicyClose(limit);
        LogPolicyClose(_services.Logger, Id, reason);
        RequestClose(CloseReason.PolicyViolation, reason);
    }

    /// <summary>
    /// Takes room for <paramref name="bytes"/> in the outbox. A peer whose unsent frames would go over the bound
    /// is closed with 1008: it does not read, and what it was not sent stays queued in its mailbox.
    /// </summary>
    private bool TryReserve(int bytes)
    {
        if (Interlocked.Add(ref _outboxBytes, bytes) <= _options.OutboxBytes)
        {
            return true;
        }

        Release(bytes);
        ClosePolicyViolation("outbox_bytes", "too many unsent bytes");
        return false;
    }

    private void Release(int bytes) => Interlocked.Add(ref _outboxBytes, -bytes);

    /// <summary>Queues a reply behind the earlier ones; false once the socket is closing.</summary>
    private async ValueTask<bool> EnqueueAsync(Reply reply)
    {
        if (!TryReserve(reply.Frame.Length))
        {
            return false;
        }

        var written = reply.AfterWritten is null ? null : new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
        try
        {
            await _outbox.Writer.WriteAsync(new Outgoing(reply.Frame, written), _abort.Token);
        }
        catch (Exception ex) when (ex is ChannelClosedException or OperationCanceledException)
        {
            Release(reply.Frame.Length);
            return false;
        }

        if (written is not null)
        {
            _ = RunAfterWrittenAsync(written.Task, reply.AfterWritten!);
        }

        return true;
    }

    /// <summary>Runs a reply's follow-up once its frame is on the socket, off the receive loop.</summary>
    private async Task RunAfterWrittenAsync(Task<bool> written, Func<Task> afterWritten)
    {
        if (!await written)
        {
            return;
        }

        try
        {
            await afterWritten();
        }
        catch (Exception ex)
        {
            // Storage did not take the follow-up (removing delivered responses): they stay queued and come again.
            LogAfterWrittenFailed(_services.Logger, ex, Id);
        }
    }

    private async Task SendLoopAsync()
    {
        try
        {
            // The reader's own wait rather than ReadAllAsync: an idle socket then keeps no enumerator while it waits.
            var reader = _outbox.Reader;
            while (await reader.WaitToReadAsync(_abort.Token))
            {
                while (reader.TryRead(out var item))
                {
                    if (item.Frame is null)
                    {
                        await _transport.CloseAsync(item.CloseStatus, item.CloseDescription!, _abort.Token);
                        return;
                    }

                    if (item.Delivery is { } delivery && !delivery.TryClaim())
                    {
                        // Withdrawn by its deliverer, which told the mailbox it would not be written.
                        Release(item.Frame.Length);
                        item.Written?.TrySetResult(false);
                        continue;
                    }

                    await _transport.SendAsync(item.Frame, _abort.Token);
                    Release(item.Frame.Length);
                    item.Written?.TrySetResult(true);
                }
            }
        }
        catch (Exception ex) when (ex is ConnectionLostException or OperationCanceledException or ObjectDisposedException)
        {
            LogSendEnded(_services.Logger, Id, ex.Message);
            Abort();
        }
        finally
        {
            while (_outbox.Reader.TryRead(out var left))
            {
                left.Written?.TrySetResult(false);
            }

            // What was never written holds no memory any more; the count shows what a dead socket still has.
            Interlocked.Exchange(ref _outboxBytes, 0);
        }
    }

    private void OnAuthenticationTimeout()
    {
        // A callback already on its way when the socket authenticated (and disposed the timer) does nothing.
        if (Volatile.Read(ref _closing) != 0 || Volatile.Read(ref _authenticationTimer) is null)
        {
            return;
        }

        _services.EdgeMetrics.AuthenticationTimeouts.Add(1);
        LogAuthenticationTimeout(_services.Logger, Id);
        RequestClose(CloseReason.PolicyViolation, "authentication timeout");
    }

    private static TaskCompletionSource CompletedGate()
    {
        var gate = new TaskCompletionSource();
        gate.SetResult();
        return gate;
    }

    private static string NewConnectionId() => System.Buffers.Text.Base64Url.EncodeToString(RandomNumberGenerator.GetBytes(16));

    [LoggerMessage(Level = LogLevel.Debug, Message = "Socket {ConnectionId} stopped receiving: {Reason}")]
    private static partial void LogReceiveEnded(ILogger logger, string connectionId, string reason);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Socket {ConnectionId} stopped sending: {Reason}")]
    private static partial void LogSendEnded(ILogger logger, string connectionId, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "The follow-up of a reply on socket {ConnectionId} failed; its responses stay queued")]
    private static partial void LogAfterWrittenFailed(ILogger logger, Exception exception, string connectionId);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Socket {ConnectionId} did not authenticate in time and is closed")]
    private static partial void LogAuthenticationTimeout(ILogger logger, string connectionId);

    [LoggerMessage(Level = LogLevel.Information, Message = "Socket {ConnectionId} is closed with 1008: {Reason}")]
    private static partial void LogPolicyClose(ILogger logger, string connectionId, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Socket {ConnectionId} does not read its frames fast enough and is closed")]
    private static partial void LogSlowPeer(ILogger logger, string connectionId);

    private readonly record struct Outgoing(
        byte[]? Frame, TaskCompletionSource<bool>? Written, CloseReason CloseStatus = default, string? CloseDescription = null, Delivery? Delivery = null)
    {
        public static Outgoing Close(CloseReason status, string reason) => new(null, null, status, reason);
    }

    /// <summary>The frames of one push: claimed by the send loop, or withdrawn by their deliverer, never both.</summary>
    private sealed class Delivery
    {
        private const int Pending = 0;
        private const int Claimed = 1;
        private const int Withdrawn = 2;
        private int _state;
        private TaskCompletionSource<bool>? _written;

        /// <summary>When the deliverer stops waiting (a <see cref="TimeProvider"/> timestamp).</summary>
        public long Deadline { get; private set; }

        /// <summary>True once the deadline passed before the last frame was written.</summary>
        public bool TimedOut { get; private set; }

        /// <summary>What <see cref="Expire"/> completes, and the deadline it is due at.</summary>
        public void Watch(TaskCompletionSource<bool> written, long deadline) => (_written, Deadline) = (written, deadline);

        /// <summary>The deadline passed: the deliverer stops waiting (and withdraws the frames unless the send loop has claimed them).</summary>
        public void Expire()
        {
            TimedOut = true;
            _written?.TrySetResult(false);
        }

        /// <summary>True when the frames may be written: first claim, or already claimed.</summary>
        public bool TryClaim() => Interlocked.CompareExchange(ref _state, Claimed, Pending) != Withdrawn;

        /// <summary>True when no frame will be written: withdrawn now, or before.</summary>
        public bool TryWithdraw() => Interlocked.CompareExchange(ref _state, Withdrawn, Pending) != Claimed;
    }
}
