using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Grains.Interfaces;
using Microsoft.Extensions.Options;
using WebSocketFrontend.Edge;
using WebSocketFrontend.Hosting;
using WebSocketFrontend.Protocol;

namespace WebSocketFrontend.Sessions;

/// <summary>
/// The actions of PROTOCOL.md: each turns a request into grain calls and one reply frame, written in the session's
/// format. What a login changes on the connection (mailbox, directory, pushes) is the <see cref="ClientSession"/>'s.
/// </summary>
public sealed partial class RequestHandler(
    IGrainFactory grains,
    AddressBudgets budgets,
    IOptions<ProtocolOptions> options,
    ILogger<RequestHandler> logger,
    GatewayMetrics metrics,
    EdgeMetrics edgeMetrics)
{
    /// <summary>Length of every token <see cref="TokenDigest.NewToken"/> makes; anything else cannot be one.</summary>
    private const int TokenLength = 43;

    /// <summary>The actions metrics are labelled with; anything else counts as <c>unknown</c>, so clients cannot grow the label set.</summary>
    private static readonly HashSet<string> KnownActions = ["register", "login", "update", "send", "ack", "logout", "delete", "online", "ping", "rotate"];

    /// <summary>The actions that check a token: refused before the grain call while their address's failures are over budget.</summary>
    private static readonly HashSet<string> TokenActions = ["login", "update", "send", "delete", "rotate"];

    private readonly ProtocolOptions _options = options.Value;

    private readonly byte[]? _registrationKeyDigest = options.Value.RegistrationKey is { Length: > 0 } key ? SHA256.HashData(Encoding.UTF8.GetBytes(key)) : null;

    /// <summary>Answers one request. Every failure becomes an <c>error</c> reply; nothing here closes the socket.</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    public async ValueTask<Reply> HandleAsync(ClientSession session, ClientRequest request, CancellationToken cancellationToken)
    {
        var replies = session.Replies;
        var action = KnownActions.Contains(request.Action) ? request.Action : "unknown";
        using var timer = metrics.TimeRequest(action);
        using var activity = GatewayTracing.StartRequest(action, session.Id);
        try
        {
            if (TokenActions.Contains(request.Action) && !budgets.MayCheckToken(session.RemoteAddress))
            {
                edgeMetrics.CountBudgetRefusal("token_failures");
                throw new ProtocolException(ErrorCodes.RateLimited, "Too many failed token checks from this address; retry later.");
            }

            var reply = request.Action switch
            {
                "register" => await RegisterAsync(session, request),
                "login" => await LoginAsync(session, request),
                "update" => await UpdateAsync(session, request),
                "send" => await SendAsync(session, request),
                "ack" => await AckAsync(session, request),
                "logout" => await LogoutAsync(session, request),
                "delete" => await DeleteAsync(session, request),
                "online" => await OnlineAsync(session, request),
                "rotate" => await RotateAsync(session, request),
                "ping" => replies.Answer(request, "pinged"),
                _ => throw new ProtocolException(ErrorCodes.UnknownAction, $"Unknown action '{request.Action}'."),
            };
            metrics.CountRequest(action, "ok");
            activity?.SetTag("gateway.client_id", session.Login?.ClientId);
            if (request.Action == "register" || TokenActions.Contains(request.Action))
            {
                session.Authenticated();
            }

            return reply;
        }
        catch (ProtocolException ex)
        {
            if (ex.Code == ErrorCodes.InvalidToken)
            {
                ChargeFailure(session);
            }

            metrics.CountRequest(action, ex.Code);
            activity?.SetTag("gateway.outcome", ex.Code);
            return replies.Error(ex.Code, ex.Message, request.Action, request.RequestIdJson, request.Context);
        }
        catch (Exception ex)
        {
            // Grain calls fail only for infrastructure reasons (storage, cluster, timeouts): the
            // request changed nothing it could not undo, and the client may retry. A socket that
            // went away meanwhile never reads the answer; that is no failure worth a log line.
            if (!cancellationToken.IsCancellationRequested)
            {
                LogUnavailable(logger, ex, request.Action);
            }

            metrics.CountRequest(action, ErrorCodes.Unavailable);
            activity?.SetStatus(System.Diagnostics.ActivityStatusCode.Error, ErrorCodes.Unavailable);
            return replies.Error(ErrorCodes.Unavailable, SendOutcome.UnavailableMessage, request.Action, request.RequestIdJson, request.Context);
        }
    }

    private async Task<Reply> RegisterAsync(ClientSession session, ClientRequest request)
    {
        var information = ReadInformation(request.Parameters);
        if (_registrationKeyDigest is not null && !budgets.MayCheckToken(session.RemoteAddress))
        {
            // Guesses at the key are failed credential checks like wrong tokens, with the same back-off.
            edgeMetrics.CountBudgetRefusal("token_failures");
            throw new ProtocolException(ErrorCodes.RateLimited, "Too many failed credential checks from this address; retry later.");
        }

        if (_registrationKeyDigest is not null && !RegistrationKeyMatches(request.Parameters))
        {
            ChargeFailure(session);
            throw new ProtocolException(ErrorCodes.Forbidden, "Registering needs the server's registration key in 'key'.");
        }

        // Every registration costs a stored client; the address's budget is checked before the grain call.
        if (!budgets.TryRegister(session.RemoteAddress, out _))
        {
            edgeMetrics.CountBudgetRefusal("registrations");
            throw new ProtocolException(ErrorCodes.RateLimited, "Too many registrations from this address; retry later.");
        }

        var token = TokenDigest.NewToken();
        var id = await grains.Grain<IClientGrain>(TokenDigest.Of(token)).Register(information);
        return session.Replies.Answer(request, "registered", (token, id), static (w, s) =>
        {
            w.WriteString("token"u8, s.token);
            w.WriteNumber("id"u8, s.id);
        });
    }

    private async Task<Reply> LoginAsync(ClientSession session, ClientRequest request)
    {
        var ackMode = OptionalBool(request.Parameters, "ack");
        var digest = TokenDigest.Of(ReadToken(request.Parameters));
        var client = await grains.Grain<IClientGrain>(digest).Get() ?? throw InvalidToken();
        return await session.LoginAsync(client, digest, ackMode, request);
    }

    private async Task<Reply> UpdateAsync(ClientSession session, ClientRequest request)
    {
        var token = ReadToken(request.Parameters);
        var information = ReadInformation(request.Parameters);
        _ = await grains.Grain<IClientGrain>(TokenDigest.Of(token)).Update(information)
            ?? throw InvalidToken();
        return session.Replies.Answer(request, "updated");
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<Reply> SendAsync(ClientSession session, ClientRequest request)
    {
        if (_options.ClientSend == ClientSendPolicy.None)
        {
            throw new ProtocolException(ErrorCodes.Forbidden, "Clients may not send on this server; only back ends do.");
        }

        var sender = SenderOf(session, request.Parameters);
        var to = RequireInt(request.Parameters, "to");
        var payload = ReadPayload(request.Parameters);

        // A socket sending with the token it logged in with is known already: its mailbox logs it
        // out if the client is deleted, so the login vouches for the token without another call.
        var senderId = session.LoginWith(sender.Digest) is { } login
            ? login.ClientId
            : (await sender.Grain.Get() ?? throw InvalidToken()).Id;
        var result = to > 0
            ? await grains.Grain<IClientIdGrain>(to).SendFromClient(senderId, payload, _options.ClientSend == ClientSendPolicy.Contacts)
            : new SendResult(SendStatus.NotFound, 0);
        metrics.CountSent(result);
        if (SendOutcome.ErrorOf(result, to) is { } refused)
        {
            throw refused;
        }

        return session.Replies.Answer(request, "sent", result, static (w, r) =>
        {
            w.WriteNumber("seq"u8, r.Seq);
            w.WriteString("delivered"u8, SendOutcome.Delivered(r));
        });
    }

    /// <summary>
    /// The digest and client grain of a <c>send</c>'s token. A socket that sends with the token of its last send
    /// again gets them back without hashing it and making a grain reference anew; whether the token is still good is
    /// asked of the grain on every send all the same.
    /// </summary>
    private SenderToken SenderOf(ClientSession session, JsonElement parameters)
    {
        if (session.SenderToken is { } known
            && Json.TryGetProperty(parameters, "token", out var given)
            && given.ValueKind == JsonValueKind.String
            && given.ValueEquals(known.Token))
        {
            return known;
        }

        var token = ReadToken(parameters);
        var digest = TokenDigest.Of(token);
        return session.SenderToken = new SenderToken(token, digest, grains.Grain<IClientGrain>(digest));
    }

    private async Task<Reply> RotateAsync(ClientSession session, ClientRequest request)
    {
        var digest = TokenDigest.Of(ReadToken(request.Parameters));
        var token = TokenDigest.NewToken();
        var next = TokenDigest.Of(token);

        // The session logged in with this token survives the move; any other session of the client used the old token and ends.
        var login = session.LoginWith(digest);
        _ = await grains.Grain<IClientGrain>(digest).Rotate(next, login?.Registration.SessionId, evenIfExpired: false) ?? throw InvalidToken();
        if (login is not null)
        {
            session.Rotated(login, next);
        }

        return session.Replies.Answer(request, "rotated", token, static (w, t) => w.WriteString("token"u8, t));
    }

    private async Task<Reply> AckAsync(ClientSession session, ClientRequest request)
    {
        var upTo = RequireLong(request.Parameters, "upTo");
        var login = session.Login ?? throw NotLoggedIn();
        if (!login.Registration.AckMode)
        {
            throw ProtocolException.BadRequest("'ack' needs a login with \"ack\": true.");
        }

        var mailbox = grains.Grain<IClientIdGrain>(login.ClientId);
        if (!await mailbox.Acknowledge(session.Id, upTo)
            && (!await session.ReattachAsync(login) || !await mailbox.Acknowledge(session.Id, upTo)))
        {
            throw NotLoggedIn();
        }

        return session.Replies.Answer(request, "acked", upTo, static (w, u) => w.WriteNumber("upTo"u8, u));
    }

    private async Task<Reply> LogoutAsync(ClientSession session, ClientRequest request)
    {
        if (!await session.LogoutAsync())
        {
            throw NotLoggedIn();
        }

        return session.Replies.Answer(request, "loggedOut", 0, static (w, _) => w.WriteString("reason"u8, "logout"));
    }

    private async Task<Reply> DeleteAsync(ClientSession session, ClientRequest request)
    {
        var token = ReadToken(request.Parameters);
        var id = await grains.Grain<IClientGrain>(TokenDigest.Of(token)).Delete() ?? throw InvalidToken();
        return session.Replies.Answer(request, "deleted", id, static (w, i) => w.WriteNumber("id"u8, i));
    }

    private async Task<Reply> OnlineAsync(ClientSession session, ClientRequest request)
    {
        if (!_options.ClientsMayListOnline)
        {
            throw new ProtocolException(ErrorCodes.Forbidden, "Clients may not list who is online on this server.");
        }

        _ = session.Login ?? throw NotLoggedIn();
        var after = OptionalLong(request.Parameters, "after") ?? 0;
        var limit = OptionalLong(request.Parameters, "limit") ?? _options.MaxOnlinePage;
        if (limit < 1 || limit > _options.MaxOnlinePage)
        {
            throw ProtocolException.BadRequest($"'limit' must be between 1 and {_options.MaxOnlinePage}.");
        }

        var page = OnlinePage.Of(await OnlineDirectory.OnlineClientIdsAsync(grains), after, (int)limit);
        return session.Replies.Answer(request, "online", page, OnlinePage.Write);
    }

    private static string ReadToken(JsonElement parameters)
    {
        var token = Json.RequireString(parameters, "token");

        // A string that cannot be a token is refused without waking a grain for it.
        return token.Length == TokenLength ? token : throw InvalidToken();
    }

    /// <summary>Compares digests, so neither the key's content nor its length shows in the time taken.</summary>
    private bool RegistrationKeyMatches(JsonElement parameters)
    {
        if (!Json.TryGetProperty(parameters, "key", out var key) || key.ValueKind != JsonValueKind.String)
        {
            return false;
        }

        var given = SHA256.HashData(Encoding.UTF8.GetBytes(Json.GetString(key, "key")));
        return CryptographicOperations.FixedTimeEquals(given, _registrationKeyDigest);
    }

    private void ChargeFailure(ClientSession session)
    {
        edgeMetrics.TokenFailures.Add(1);
        budgets.RecordTokenFailure(session.RemoteAddress);
    }

    private static ProtocolException InvalidToken() =>
        new(ErrorCodes.InvalidToken, "The token does not belong to a registered client.");

    private static ProtocolException NotLoggedIn() =>
        new(ErrorCodes.NotLoggedIn, "This socket is not logged in.");

    private ClientInformation ReadInformation(JsonElement parameters)
    {
        var information = Json.RequireObject(parameters, "information");
        var json = information.GetRawText();
        if (Encoding.UTF8.GetByteCount(json) > _options.MaxInformationBytes)
        {
            throw ProtocolException.TooLarge($"'information' is larger than {_options.MaxInformationBytes} bytes.");
        }

        return new ClientInformation(json, OptionalText(information, "name"), OptionalText(information, "location"));
    }

    private string ReadPayload(JsonElement parameters)
    {
        if (!Json.TryGetProperty(parameters, "payload", out var payload))
        {
            throw ProtocolException.BadRequest("Missing parameter 'payload'.");
        }

        var json = payload.GetRawText();
        return Encoding.UTF8.GetByteCount(json) <= _options.MaxPayloadBytes
            ? json
            : throw ProtocolException.TooLarge($"'payload' is larger than {_options.MaxPayloadBytes} bytes.");
    }

    private string? OptionalText(JsonElement information, string name)
    {
        if (!Json.TryGetProperty(information, name, out var value) || value.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        if (value.ValueKind != JsonValueKind.String)
        {
            throw ProtocolException.BadRequest($"'information.{name}' must be a string.");
        }

        var text = Json.GetString(value, $"information.{name}");
        return text.Length <= _options.MaxTextFieldLength
            ? text
            : throw ProtocolException.TooLarge($"'information.{name}' is longer than {_options.MaxTextFieldLength} characters.");
    }

    private static bool OptionalBool(JsonElement parameters, string name)
    {
        if (!Json.TryGetProperty(parameters, name, out var value) || value.ValueKind == JsonValueKind.Null)
        {
            return false;
        }

        return value.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw ProtocolException.BadRequest($"'{name}' must be true or false."),
        };
    }

    private static int RequireInt(JsonElement parameters, string name)
    {
        var value = RequireLong(parameters, name);
        return value is >= int.MinValue and <= int.MaxValue
            ? (int)value
            : throw ProtocolException.BadRequest($"'{name}' is out of range.");
    }

    private static long RequireLong(JsonElement parameters, string name) =>
        OptionalLong(parameters, name) ?? throw ProtocolException.BadRequest($"Missing parameter '{name}'.");

    private static long? OptionalLong(JsonElement parameters, string name)
    {
        if (!Json.TryGetProperty(parameters, name, out var value) || value.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        return value.ValueKind == JsonValueKind.Number && value.TryGetInt64(out var number)
            ? number
            : throw ProtocolException.BadRequest($"'{name}' must be an integer.");
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Request '{Action}' failed on storage or cluster; answered 'unavailable'")]
    private static partial void LogUnavailable(ILogger logger, Exception exception, string action);
}
