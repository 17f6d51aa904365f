using System.Text.Json;
using System.Text.Json.Serialization;
using Grains.Interfaces;
using Microsoft.Extensions.Options;
using WebSocketFrontend.Protocol;
using WebSocketFrontend.Sessions;

namespace WebSocketFrontend.Hosting;

/// <summary>
/// <c>/api</c>: back ends post responses to clients by id and read a client's state; operators
/// list the online clients. Every route needs <c>Authorization: Bearer</c> with the admin key.
/// </summary>
public static class ApiEndpoints
{
    /// <summary>The OpenAPI security scheme every <c>/api</c> route requires.</summary>
    public const string SecurityScheme = "adminKey";

    /// <summary>How many ids one <c>GET /api/clients</c> page looks at, at most, per id it may return.</summary>
    private const int ScanPerListedClient = 4;

    public static WebApplication MapClientApi(this WebApplication app)
    {
        var api = app.MapGroup("/api").AddEndpointFilter(RequireAdminKey)
            .ProducesProblem(StatusCodes.Status401Unauthorized)
            .ProducesProblem(StatusCodes.Status503ServiceUnavailable)
            .WithTags("admin");
        api.MapPost("/clients/{id:int}/responses", PostResponseAsync)
            .WithSummary("Delivers a response to a client, or queues it.")
            .Accepts<JsonElement>("application/json")
            .Produces<SendAccepted>(StatusCodes.Status202Accepted)
            .ProducesProblem(StatusCodes.Status400BadRequest)
            .ProducesProblem(StatusCodes.Status404NotFound)
            .ProducesProblem(StatusCodes.Status409Conflict)
            .ProducesProblem(StatusCodes.Status413PayloadTooLarge);
        api.MapGet("/clients/{id:int}", GetClientAsync)
            .WithSummary("A client's information, whether it is online, and its queue length and bytes.")
            .Produces<ClientDetails>()
            .ProducesProblem(StatusCodes.Status404NotFound);
        api.MapGet("/online", GetOnlineAsync)
            .WithSummary("Online client ids, ascending, paged by id.")
            .Produces<IdPage>()
            .ProducesProblem(StatusCodes.Status400BadRequest);
        api.MapGet("/clients/{id:int}/contacts", GetContactsAsync)
            .WithSummary("The ids that may send to a client.")
            .Produces<ContactList>()
            .ProducesProblem(StatusCodes.Status404NotFound);
        api.MapPut("/clients/{id:int}/contacts/{other:int}", LinkAsync)
            .WithSummary("Links two clients both ways.")
            .Produces(StatusCodes.Status204NoContent)
            .ProducesProblem(StatusCodes.Status404NotFound)
            .ProducesProblem(StatusCodes.Status409Conflict);
        api.MapDelete("/clients/{id:int}/contacts/{other:int}", UnlinkAsync)
            .WithSummary("Unlinks two clients both ways.")
            .Produces(StatusCodes.Status204NoContent)
            .ProducesProblem(StatusCodes.Status404NotFound);
        api.MapPost("/clients/{id:int}/revoke", RevokeAsync)
            .WithSummary("Kills a client's token; its sessions hear revoked.")
            .Produces(StatusCodes.Status204NoContent)
            .ProducesProblem(StatusCodes.Status404NotFound);
        api.MapPost("/clients/{id:int}/token", IssueTokenAsync)
            .WithSummary("Issues a client a new token, shown once; the old one dies.")
            .Produces<IssuedToken>()
            .ProducesProblem(StatusCodes.Status404NotFound);
        api.MapGet("/clients", ListClientsAsync)
            .WithSummary("Registered clients, ascending, paged by id.")
            .Produces<ClientPage>()
            .ProducesProblem(StatusCodes.Status400BadRequest);
        api.MapDelete("/clients/{id:int}", DeleteClientAsync)
            .WithSummary("Deletes a client with its queue; a live session hears deleted.")
            .Produces(StatusCodes.Status204NoContent)
            .ProducesProblem(StatusCodes.Status404NotFound);
        api.MapDelete("/clients/{id:int}/session", EndSessionAsync)
            .WithSummary("Ends a client's live session, which hears loggedOut with reason kicked.")
            .Produces<SessionEnded>()
            .ProducesProblem(StatusCodes.Status404NotFound);
        api.MapGet("/clients/{id:int}/queue", GetQueueAsync)
            .WithSummary("A client's queued responses, oldest first, paged by seq; nothing is removed.")
            .Produces<QueuePage>()
            .ProducesProblem(StatusCodes.Status400BadRequest)
            .ProducesProblem(StatusCodes.Status404NotFound);
        api.MapDelete("/clients/{id:int}/queue", PurgeQueueAsync)
            .WithSummary("Removes every queued response of a client.")
            .Produces<QueuePurged>()
            .ProducesProblem(StatusCodes.Status404NotFound);
        api.MapGet("/stats", GetStatsAsync)
            .WithSummary("Cluster counts (silos, frontends, sessions, activations) and this frontend's live counters.")
            .Produces<ClusterStats>();
        return app;
    }

    private static async ValueTask<object?> RequireAdminKey(EndpointFilterInvocationContext context, EndpointFilterDelegate next)
    {
        var options = context.HttpContext.RequestServices.GetRequiredService<IOptions<ApiOptions>>().Value;
        return AdminKeyRefusal(options, context.HttpContext) ?? await next(context);
    }

    /// <summary>
    /// Null when the request carries the admin key; otherwise the refusal: 404 while no key is configured
    /// (the routes are off), 401 with <c>WWW-Authenticate: Bearer</c> without a valid key.
    /// </summary>
    internal static IResult? AdminKeyRefusal(ApiOptions options, HttpContext context)
    {
        if (string.IsNullOrEmpty(options.AdminKey))
        {
            return Error(StatusCodes.Status404NotFound, ErrorCodes.NotFound, "Not found.");
        }

        if (!options.IsPresentedBy(context.Request))
        {
            context.Response.Headers.WWWAuthenticate = "Bearer";
            return Error(StatusCodes.Status401Unauthorized, "unauthorized", "A valid 'Authorization: Bearer <admin key>' header is required.");
        }

        return null;
    }

    private static async Task<IResult> PostResponseAsync(int id, HttpRequest request, IGrainFactory grains, IOptions<ProtocolOptions> options, GatewayMetrics metrics)
    {
        var limit = options.Value.MaxPayloadBytes;
        var body = await ReadBodyAsync(request, limit);
        if (body is null)
        {
            return Error(StatusCodes.Status413PayloadTooLarge, ErrorCodes.TooLarge, $"The payload is larger than {limit} bytes.");
        }

        string payload;
        try
        {
            using var document = JsonDocument.Parse(body, new JsonDocumentOptions { MaxDepth = RequestParser.MaxDepth, AllowDuplicateProperties = false });
            payload = document.RootElement.GetRawText();
        }
        catch (Exception ex) when (ex is JsonException or InvalidOperationException)
        {
            // The duplicate-name check throws InvalidOperationException for a name that is a lone surrogate.
            return Error(StatusCodes.Status400BadRequest, ErrorCodes.BadRequest, $"The body is not a JSON document: {ex.Message}");
        }

        if (!UnicodeText.AllStringsValid(body))
        {
            return Error(StatusCodes.Status400BadRequest, ErrorCodes.BadRequest, "A string in the body is not valid Unicode text (a lone UTF-16 surrogate).");
        }

        return await GuardAsync(async () =>
        {
            var result = id > 0 ? await grains.Grain<IClientIdGrain>(id).Send(null, payload) : new SendResult(SendStatus.NotFound, 0);
            metrics.CountSent(result);
            if (SendOutcome.ErrorOf(result, id) is { } refused)
            {
                return Error(refused.Code == ErrorCodes.QueueFull ? StatusCodes.Status409Conflict : StatusCodes.Status404NotFound, refused.Code, refused.Message);
            }

            return Results.Json(new SendAccepted(result.Seq, SendOutcome.Delivered(result)), statusCode: StatusCodes.Status202Accepted);
        });
    }

    private static Task<IResult> GetClientAsync(int id, IGrainFactory grains) => GuardAsync(async () =>
    {
        var mailbox = grains.Grain<IClientIdGrain>(id);
        var digest = id > 0 ? await mailbox.GetDigest() : null;
        var client = digest is null ? null : await grains.Grain<IClientGrain>(digest).Read();
        if (client is null)
        {
            return Error(StatusCodes.Status404NotFound, ErrorCodes.NotFound, $"No client has id {id}.");
        }

        var status = await mailbox.Status();
        return Results.Json(new ClientDetails(
            client.Id,
            StoredInformation(client.Information.Json),
            UnicodeText.SanitizeText(client.Information.Name),
            UnicodeText.SanitizeText(client.Information.Location),
            client.CreatedAt,
            client.UpdatedAt,
            status.Online,
            status.QueueLength,
            status.QueueBytes));
    });

    private static Task<IResult> GetOnlineAsync(IGrainFactory grains, IOptions<ProtocolOptions> options, long? after, int? limit) => GuardAsync(async () =>
    {
        var max = options.Value.MaxOnlinePage;
        if (limit is < 1 || limit > max)
        {
            return Error(StatusCodes.Status400BadRequest, ErrorCodes.BadRequest, $"'limit' must be between 1 and {max}.");
        }

        var page = OnlinePage.Of(await OnlineDirectory.OnlineClientIdsAsync(grains), after ?? 0, limit ?? max);
        return Results.Json(new IdPage(page.Clients, page.Next));
    });

    private static Task<IResult> GetContactsAsync(int id, IGrainFactory grains) => GuardAsync(async () =>
        (id > 0 ? await grains.Grain<IClientIdGrain>(id).Contacts() : null) is { } contacts
            ? Results.Json(new ContactList(id, contacts))
            : ClientNotFound(id));

    /// <summary>
    /// Links two clients both ways: each may send to the other. Two writes, one per client; a failure
    /// between them leaves a one-way link that a retry completes.
    /// </summary>
    private static Task<IResult> LinkAsync(int id, int other, IGrainFactory grains) => GuardAsync(async () =>
    {
        if (id <= 0 || other <= 0)
        {
            return ClientNotFound(id <= 0 ? id : other);
        }

        var first = await grains.Grain<IClientIdGrain>(id).AddContact(other);
        var second = first == ContactChange.Done ? await grains.Grain<IClientIdGrain>(other).AddContact(id) : first;
        if (first == ContactChange.Done && second != ContactChange.Done)
        {
            await grains.Grain<IClientIdGrain>(id).RemoveContact(other);
        }

        return second switch
        {
            ContactChange.Done => Results.NoContent(),
            ContactChange.NotFound => ClientNotFound(first == ContactChange.NotFound ? id : other),
            _ => Error(StatusCodes.Status409Conflict, ErrorCodes.TooLarge, "A client of the pair has as many contacts as it may."),
        };
    });

    /// <summary>Unlinks two clients both ways; the other id may be a client deleted since.</summary>
    private static Task<IResult> UnlinkAsync(int id, int other, IGrainFactory grains) => GuardAsync(async () =>
    {
        if (id <= 0 || await grains.Grain<IClientIdGrain>(id).RemoveContact(other) == ContactChange.NotFound)
        {
            return ClientNotFound(id);
        }

        if (other > 0)
        {
            await grains.Grain<IClientIdGrain>(other).RemoveContact(id);
        }

        return Results.NoContent();
    });

    /// <summary>Kills the client's token: the client keeps its id, information and queue, and its sessions hear <c>revoked</c>.</summary>
    private static Task<IResult> RevokeAsync(int id, IGrainFactory grains) => GuardAsync(async () =>
        await ReplaceTokenAsync(id, grains, TokenDigest.NewToken()) ? Results.NoContent() : ClientNotFound(id));

    /// <summary>Issues the client a new token, shown once; the old one dies and its sessions hear <c>revoked</c>.</summary>
    private static Task<IResult> IssueTokenAsync(int id, IGrainFactory grains) => GuardAsync(async () =>
    {
        var token = TokenDigest.NewToken();
        return await ReplaceTokenAsync(id, grains, token) ? Results.Json(new IssuedToken(id, token)) : ClientNotFound(id);
    });

    /// <summary>Moves client <paramref name="id"/> to <paramref name="token"/>; false when no client has the id.</summary>
    private static async Task<bool> ReplaceTokenAsync(int id, IGrainFactory grains, string token)
    {
        // The index may move under us (the client rotating at the same moment): read it again, a bounded number of times.
        for (var attempt = 0; attempt < 3 && id > 0; attempt++)
        {
            if (await grains.Grain<IClientIdGrain>(id).GetDigest() is not { } digest)
            {
                return false;
            }

            if (await grains.Grain<IClientGrain>(digest).Rotate(TokenDigest.Of(token), keepSessionId: null, evenIfExpired: true) is not null)
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>
    /// Registered clients with ids above <paramref name="after"/>. Ids are handed out in blocks and
    /// deleted clients leave gaps, so one page looks at no more than a bounded run of ids: a page may
    /// hold fewer clients than <paramref name="limit"/>, and <c>next</c> (null at the end) is where the
    /// following one starts.
    /// </summary>
    private static Task<IResult> ListClientsAsync(IGrainFactory grains, IOptions<ProtocolOptions> options, int? after, int? limit) => GuardAsync(async () =>
    {
        var max = options.Value.MaxOnlinePage;
        if (limit is < 1 || limit > max || after is < 0)
        {
            return Error(StatusCodes.Status400BadRequest, ErrorCodes.BadRequest, $"'limit' must be between 1 and {max}, and 'after' at least 0.");
        }

        var size = limit ?? max;
        var highWater = await grains.Grain<IIdAllocatorGrain>(Names.IdAllocatorKey).HighWater();
        var cursor = after ?? 0;
        var budget = size * ScanPerListedClient;
        var clients = new List<ClientSummary>(size);
        while (clients.Count < size && cursor < highWater && budget > 0)
        {
            var first = cursor + 1;
            var count = Math.Min(Math.Min(size - clients.Count, highWater - cursor), budget);
            var statuses = await Task.WhenAll(Enumerable.Range(first, count).Select(i => grains.Grain<IClientIdGrain>(i).Status()));
            for (var i = 0; i < statuses.Length; i++)
            {
                if (statuses[i].Registered)
                {
                    clients.Add(new ClientSummary(first + i, statuses[i].Online, statuses[i].QueueLength, statuses[i].QueueBytes));
                }
            }

            cursor += count;
            budget -= count;
        }

        return Results.Json(new ClientPage(clients, cursor < highWater ? cursor : null));
    });

    /// <summary>Deletes a client as its own <c>delete</c> does; its live session hears <c>deleted</c>.</summary>
    private static Task<IResult> DeleteClientAsync(int id, IGrainFactory grains) => GuardAsync(async () =>
    {
        // The digest may move under us (the client rotating at the same moment): read it again, a bounded number of times.
        for (var attempt = 0; attempt < 3 && id > 0; attempt++)
        {
            if (await grains.Grain<IClientIdGrain>(id).GetDigest() is not { } digest)
            {
                break;
            }

            if (await grains.Grain<IClientGrain>(digest).Delete() is not null)
            {
                return Results.NoContent();
            }
        }

        return ClientNotFound(id);
    });

    /// <summary>Ends the client's live session, if any: it hears <c>loggedOut</c> with reason <c>kicked</c>; its token still works.</summary>
    private static Task<IResult> EndSessionAsync(int id, IGrainFactory grains) => GuardAsync(async () =>
    {
        var mailbox = grains.Grain<IClientIdGrain>(id);
        if (id <= 0 || await mailbox.GetDigest() is null)
        {
            return ClientNotFound(id);
        }

        return Results.Json(new SessionEnded(id, await mailbox.Kick()));
    });

    private static Task<IResult> GetQueueAsync(int id, IGrainFactory grains, IOptions<ProtocolOptions> options, long? after, int? limit) => GuardAsync(async () =>
    {
        var max = options.Value.MaxOnlinePage;
        if (limit is < 1 || limit > max || after is < 0)
        {
            return Error(StatusCodes.Status400BadRequest, ErrorCodes.BadRequest, $"'limit' must be between 1 and {max}, and 'after' at least 0.");
        }

        var size = limit ?? max;
        // One more than the page, to tell whether another page follows.
        if ((id > 0 ? await grains.Grain<IClientIdGrain>(id).PeekQueue(after ?? 0, size + 1) : null) is not { } items)
        {
            return ClientNotFound(id);
        }

        var page = items.Take(size).Select(r => new QueuedResponse(r.Seq, r.From, r.At, StoredInformation(r.Payload))).ToList();
        return Results.Json(new QueuePage(id, page, items.Length > size ? page[^1].Seq : null));
    });

    private static Task<IResult> PurgeQueueAsync(int id, IGrainFactory grains) => GuardAsync(async () =>
        (id > 0 ? await grains.Grain<IClientIdGrain>(id).Purge() : null) is { } removed
            ? Results.Json(new QueuePurged(id, removed))
            : ClientNotFound(id));

    /// <summary>Cluster-wide counts from the management grain and the online directory, and this frontend's own counters.</summary>
    private static Task<IResult> GetStatsAsync(IGrainFactory grains, SessionRegistry registry, FrontendIdentity frontend, GatewayMetrics metrics) => GuardAsync(async () =>
    {
        var management = grains.GetGrain<IManagementGrain>(0);
        var silos = await management.GetHosts(onlyActive: true);
        var activations = await management.GetTotalActivationCount();
        var shards = Enumerable.Range(0, OnlineDirectory.ShardCount).Select(s => grains.Grain<IOnlineDirectoryGrain>(s)).ToArray();
        var entries = await Task.WhenAll(shards.Select(s => s.List()));
        var leases = await Task.WhenAll(shards.Select(s => s.Frontends()));
        var frontends = leases.SelectMany(l => l).Append(frontend.Id).Distinct(StringComparer.Ordinal).Count();
        var local = new FrontendCounters(
            frontend.Id,
            registry.Count,
            registry.Sessions.Count(s => s.Login is not null),
            metrics.ResponsesAccepted,
            metrics.ResponsesPushed);
        return Results.Json(new ClusterStats(silos.Count, frontends, entries.Sum(e => e.Length), activations, local));
    });

    private static IResult ClientNotFound(int id) => Error(StatusCodes.Status404NotFound, ErrorCodes.NotFound, $"No client has id {id}.");

    /// <summary>
    /// The stored information as a JSON value. A row stored before strings were checked may hold a lone
    /// surrogate, which the serializer refuses to write: it is replaced by U+FFFD, and text that is no JSON
    /// at all reads as null, so one bad row never turns the route into a 500.
    /// </summary>
    private static JsonElement? StoredInformation(string json)
    {
        try
        {
            using var document = JsonDocument.Parse(UnicodeText.SanitizeJson(json));
            return document.RootElement.Clone();
        }
        catch (JsonException)
        {
            return null;
        }
    }

    /// <summary>Storage or cluster failures answer 503 <c>unavailable</c>; the caller may retry.</summary>
    private static async Task<IResult> GuardAsync(Func<Task<IResult>> action)
    {
        try
        {
            return await action();
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            return Error(StatusCodes.Status503ServiceUnavailable, ErrorCodes.Unavailable, SendOutcome.UnavailableMessage);
        }
    }

    /// <summary>The body, or null when it is longer than <paramref name="limit"/> bytes.</summary>
    private static async Task<byte[]?> ReadBodyAsync(HttpRequest request, int limit)
    {
        if (request.ContentLength > limit)
        {
            return null;
        }

        using var buffer = new MemoryStream();
        var chunk = new byte[8192];
        int read;
        while ((read = await request.Body.ReadAsync(chunk, request.HttpContext.RequestAborted)) > 0)
        {
            if (buffer.Length + read > limit)
            {
                return null;
            }

            buffer.Write(chunk, 0, read);
        }

        return buffer.ToArray();
    }

    /// <summary>
    /// An RFC 9457 problem-details body: <c>status</c>, <c>title</c> and <c>detail</c>, with the
    /// protocol's error code as the extension member <c>code</c>.
    /// </summary>
    internal static IResult Error(int status, string code, string message) =>
        Results.Problem(detail: message, statusCode: status, extensions: new Dictionary<string, object?> { ["code"] = code });
}

/// <summary>A response taken in: its sequence number and whether it went to a live session or the queue.</summary>
public sealed record SendAccepted(long Seq, string Delivered);

/// <summary>A client's stored information and mailbox state.</summary>
public sealed record ClientDetails(
    int Id, JsonElement? Information, string? Name, string? Location, DateTimeOffset CreatedAt, DateTimeOffset UpdatedAt,
    bool Online, int QueueLength, long QueueBytes);

/// <summary>A page of ids; <c>next</c> is the <c>after</c> of the following page, null at the end.</summary>
public sealed record IdPage(IReadOnlyList<int> Clients, long? Next);

/// <summary>A client's contacts.</summary>
public sealed record ContactList(int Id, IReadOnlyList<int> Contacts);

/// <summary>A newly issued token, shown once.</summary>
public sealed record IssuedToken(int Id, string Token);

/// <summary>One registered client in a listing.</summary>
public sealed record ClientSummary(int Id, bool Online, int QueueLength, long QueueBytes);

/// <summary>A page of registered clients; <c>next</c> is the <c>after</c> of the following page, null at the end.</summary>
public sealed record ClientPage(IReadOnlyList<ClientSummary> Clients, int? Next);

/// <summary>Whether a live session was ended.</summary>
public sealed record SessionEnded(int Id, bool Ended);

/// <summary>One queued response, as the protocol writes it: <c>from</c> is absent when a back end sent it; <c>payload</c> is the JSON the sender gave.</summary>
public sealed record QueuedResponse(
    long Seq, [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] int? From, DateTimeOffset At, JsonElement? Payload);

/// <summary>A page of a client's queue; <c>next</c> is the <c>after</c> of the following page, null at the end.</summary>
public sealed record QueuePage(int Id, IReadOnlyList<QueuedResponse> Responses, long? Next);

/// <summary>How many queued responses a purge removed.</summary>
public sealed record QueuePurged(int Id, int Removed);

/// <summary>This frontend's live counters; the response totals count since it started.</summary>
public sealed record FrontendCounters(string Id, int Connections, int Sessions, long ResponsesAccepted, long ResponsesPushed);

/// <summary>Cluster-wide counts and the answering frontend's counters.</summary>
public sealed record ClusterStats(int Silos, int Frontends, int Sessions, int Activations, FrontendCounters Frontend);
