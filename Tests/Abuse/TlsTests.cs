using System.Net;
using System.Net.WebSockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Tests.Infrastructure;

namespace Tests.Abuse;

/// <summary>
/// There was no TLS story: <c>wss://</c> was left to an undocumented proxy. Kestrel serves HTTPS from
/// configuration; the client here trusts exactly the certificate it generated, nothing else.
/// </summary>
public sealed class TlsTests
{
    [Theory]
    [InlineData("pfx")]
    [InlineData("pem")]
    public async Task TheGatewaySpeaksWssWithACertificateFromConfiguration(string format)
    {
        var folder = Directory.CreateTempSubdirectory("cm-tls-");
        using var database = new TempDatabase();
        try
        {
            using var certificate = SelfSigned();
            var settings = new Dictionary<string, string> { ["urls"] = "https://127.0.0.1:0" };
            if (format == "pfx")
            {
                var path = Path.Combine(folder.FullName, "gateway.pfx");
                await File.WriteAllBytesAsync(path, certificate.Export(X509ContentType.Pfx, "secret"), TestContext.Current.CancellationToken);
                settings["Kestrel:Certificates:Default:Path"] = path;
                settings["Kestrel:Certificates:Default:Password"] = "secret";
            }
            else
            {
                var cert = Path.Combine(folder.FullName, "gateway.crt");
                var key = Path.Combine(folder.FullName, "gateway.key");
                await File.WriteAllTextAsync(cert, certificate.ExportCertificatePem(), TestContext.Current.CancellationToken);
                await File.WriteAllTextAsync(key, certificate.GetRSAPrivateKey()!.ExportPkcs8PrivateKeyPem(), TestContext.Current.CancellationToken);
                settings["Kestrel:Certificates:Default:Path"] = cert;
                settings["Kestrel:Certificates:Default:KeyPath"] = key;
            }

            await using var server = await GatewayServer.StartAsync(database.Path, settings);
            Assert.Equal("wss", server.WebSocketUri.Scheme);
            var pin = certificate.GetCertHashString(HashAlgorithmName.SHA256);

            await using (var pinned = await Upgrade.TryAsync(server.WebSocketUri, configure: o =>
                o.RemoteCertificateValidationCallback = (_, presented, _, _) =>
                    presented is not null && string.Equals(presented.GetCertHashString(HashAlgorithmName.SHA256), pin, StringComparison.OrdinalIgnoreCase)))
            {
                Assert.True(pinned.Accepted, $"wss upgrade got {pinned.Status}");
                await SendAsync(pinned.Socket, WsClient.Envelope("register", new { information = new { name = "tls" } }, 1));
                var reply = await ReceiveAsync(pinned.Socket);
                Assert.Contains("\"registered\"", reply);
            }

            // A client pinning another certificate does not get through.
            using var other = SelfSigned();
            var otherPin = other.GetCertHashString(HashAlgorithmName.SHA256);
            await using var wrongPin = await Upgrade.TryAsync(server.WebSocketUri, configure: o =>
                o.RemoteCertificateValidationCallback = (_, presented, _, _) =>
                    presented is not null && presented.GetCertHashString(HashAlgorithmName.SHA256) == otherPin);
            Assert.False(wrongPin.Accepted);
            Assert.NotEqual(WebSocketState.Open, wrongPin.Socket.State);
        }
        finally
        {
            folder.Delete(recursive: true);
        }
    }

    private static X509Certificate2 SelfSigned()
    {
        using var key = RSA.Create(2048);
        var request = new CertificateRequest("CN=127.0.0.1", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        var names = new SubjectAlternativeNameBuilder();
        names.AddIpAddress(IPAddress.Loopback);
        request.CertificateExtensions.Add(names.Build());
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], critical: false));
        var now = DateTimeOffset.UtcNow;
        using var created = request.CreateSelfSigned(now.AddDays(-1), now.AddDays(1));

        // Round trip through PFX so the private key is usable by SslStream on every platform.
        return X509CertificateLoader.LoadPkcs12(created.Export(X509ContentType.Pfx, "x"), "x", X509KeyStorageFlags.Exportable);
    }

    private static async Task SendAsync(ClientWebSocket socket, string text)
    {
        using var bound = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        bound.CancelAfter(TimeSpan.FromSeconds(20));
        await socket.SendAsync(System.Text.Encoding.UTF8.GetBytes(text), WebSocketMessageType.Text, true, bound.Token);
    }

    private static async Task<string> ReceiveAsync(ClientWebSocket socket)
    {
        using var bound = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        bound.CancelAfter(TimeSpan.FromSeconds(20));
        var buffer = new byte[16 * 1024];
        using var message = new MemoryStream();
        for (var i = 0; i < 100; i++)
        {
            var result = await socket.ReceiveAsync(buffer, bound.Token);
            message.Write(buffer, 0, result.Count);
            if (result.EndOfMessage)
            {
                break;
            }
        }

        return System.Text.Encoding.UTF8.GetString(message.ToArray());
    }
}
