using System.Buffers;
using System.Net.WebSockets;
using System.Text.Json;
using MQTTnet;
using MQTTnet.Adapter;
using MQTTnet.Exceptions;
using MQTTnet.Formatter;
using MQTTnet.Protocol;

namespace Benchmarks.Mqtt;

/// <summary>
/// What the Mosquitto scenarios share: an MQTT client over WebSocket with a persistent session (clean
/// session off, MQTT 3.1.1) logging in as the broker's benchmark user, QoS 1 everywhere, and the failure
/// codes of MQTTnet's exceptions.
/// </summary>
internal static class MqttPeer
{
    private static readonly MqttClientFactory _factory = new();

    /// <summary>Keep-alive long enough that no idle client pings within a run, as the gateway's clients do not.</summary>
    private static readonly TimeSpan _keepAlive = TimeSpan.FromMinutes(10);

    public static IMqttClient Create() => _factory.CreateMqttClient();

    /// <summary>CONNECT options for client <paramref name="clientId"/>; <paramref name="persistent"/> false makes a throwaway session.</summary>
    public static MqttClientOptions Options(MosquittoProcess broker, string clientId, bool persistent = true) =>
        new MqttClientOptionsBuilder()
            .WithWebSocketServer(o => o.WithUri(broker.Url.ToString()))
            .WithClientId(clientId)
            .WithCredentials(MosquittoProcess.User, broker.Password)
            .WithCleanSession(!persistent)
            .WithProtocolVersion(MqttProtocolVersion.V311)
            .WithTimeout(LoadRunner.OperationTimeout)
            .WithKeepAlivePeriod(_keepAlive)
            .Build();

    /// <summary>Subscribes to one topic at QoS 1.</summary>
    public static async Task SubscribeAsync(IMqttClient client, string topic, CancellationToken cancellationToken)
    {
        var result = await client.SubscribeAsync(
            new MqttClientSubscribeOptionsBuilder().WithTopicFilter(topic, MqttQualityOfServiceLevel.AtLeastOnce).Build(), cancellationToken);
        var code = result.Items.Single().ResultCode;
        if (code != MqttClientSubscribeResultCode.GrantedQoS1)
        {
            throw new MqttPeerException($"suback:{code}");
        }
    }

    /// <summary>Publishes at QoS 1; returns once the broker acknowledged it (PUBACK).</summary>
    public static async Task PublishAsync(IMqttClient client, string topic, byte[] payload, CancellationToken cancellationToken)
    {
        var message = new MqttApplicationMessageBuilder()
            .WithTopic(topic)
            .WithPayload(payload)
            .WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce)
            .Build();
        var result = await client.PublishAsync(message, cancellationToken);
        if (!result.IsSuccess)
        {
            throw new MqttPeerException($"puback:{result.ReasonCode}");
        }
    }

    /// <summary>Disconnects if connected, bounded in time; a failure here only means the socket is gone already.</summary>
    public static async Task CloseAsync(IMqttClient client)
    {
        try
        {
            if (client.IsConnected)
            {
                using var bound = new CancellationTokenSource(LoadRunner.OperationTimeout);
                await client.DisconnectAsync(new MqttClientDisconnectOptionsBuilder().Build(), bound.Token);
            }
        }
        catch (Exception ex) when (ex is MqttCommunicationException or OperationCanceledException or WebSocketException)
        {
            // Closed under us.
        }
        finally
        {
            client.Dispose();
        }
    }

    /// <summary>Reads the integer properties of a payload such as <c>{"k":12,"t":345}</c>.</summary>
    public static (long A, long B) ReadPair(ReadOnlySequence<byte> payload, ReadOnlySpan<byte> a, ReadOnlySpan<byte> b)
    {
        var reader = new Utf8JsonReader(payload);
        long first = -1, second = -1;
        while (reader.Read())
        {
            if (reader.TokenType != JsonTokenType.PropertyName)
            {
                continue;
            }

            var isA = reader.ValueTextEquals(a);
            var isB = reader.ValueTextEquals(b);
            reader.Read();
            if (isA)
            {
                first = reader.GetInt64();
            }
            else if (isB)
            {
                second = reader.GetInt64();
            }
        }

        return (first, second);
    }

    /// <summary>The code of a failed MQTT step, or null for the run's own cancellation and anything unexpected, which propagate.</summary>
    public static string? CodeOf(Exception exception, CancellationToken run) => exception switch
    {
        MqttPeerException peer => peer.Message,
        OperationCanceledException when !run.IsCancellationRequested => "timeout",
        MqttConnectingFailedException => "connack_refused",
        MqttCommunicationTimedOutException => "timeout",
        MqttClientNotConnectedException => "not_connected",
        MqttCommunicationException => "communication",
        WebSocketException socket => LoadRunner.Describe(socket),
        _ when exception.GetType().Namespace?.StartsWith("MQTTnet", StringComparison.Ordinal) == true => "mqtt:" + exception.GetType().Name,
        _ => null,
    };
}

/// <summary>An answer of the broker that the scenario did not expect; its message is the failure code.</summary>
internal sealed class MqttPeerException(string code) : Exception(code);
