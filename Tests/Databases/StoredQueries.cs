using System.Data;
using System.Globalization;
using Tests.Infrastructure;

namespace Tests.Databases;

/// <summary>The query keys the Orleans 10.4.2 ADO.NET providers read from <c>OrleansQuery</c>.</summary>
public static class QueryKeys
{
    /// <summary>Grain storage; <c>DeleteStorageKey</c> because the store clears with DeleteStateOnClear.</summary>
    public static readonly string[] Storage = ["ReadFromStorageKey", "WriteToStorageKey", "ClearStorageKey", "DeleteStorageKey"];

    /// <summary>Clustering: all nine are required by the membership table and the gateway list provider.</summary>
    public static readonly string[] Clustering =
    [
        "GatewaysQueryKey", "MembershipReadRowKey", "MembershipReadAllKey", "InsertMembershipVersionKey",
        "UpdateIAmAlivetimeKey", "InsertMembershipKey", "UpdateMembershipKey", "DeleteMembershipTableEntriesKey",
        "CleanupDefunctSiloEntriesKey",
    ];

    public static readonly string[] All = [.. Storage, .. Clustering];
}

/// <summary>
/// Runs the texts stored in <c>OrleansQuery</c> the way the providers do: one command, parameters
/// by bare name with the providers' DbTypes, rows from every result set.
/// </summary>
public sealed class StoredQueries(TestDatabaseOnServer database)
{
    private Dictionary<string, string>? _texts;

    public async Task<List<Row>> RowsAsync(string key, params (string Name, object? Value, DbType Type)[] parameters)
    {
        _texts ??= (await database.QueryAsync("SELECT QueryKey, QueryText FROM OrleansQuery"))
            .ToDictionary(r => (string)r[0]!, r => (string)r[1]!);
        await using var connection = await database.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = _texts[key];
        foreach (var (name, value, type) in parameters)
        {
            var parameter = command.CreateParameter();
            parameter.ParameterName = name;
            parameter.DbType = type;
            parameter.Value = value ?? DBNull.Value;
            command.Parameters.Add(parameter);
        }

        var rows = new List<Row>();
        await using var reader = await command.ExecuteReaderAsync(TestContext.Current.CancellationToken);
        do
        {
            while (await reader.ReadAsync(TestContext.Current.CancellationToken))
            {
                var values = new Dictionary<string, object?>(StringComparer.OrdinalIgnoreCase);
                for (var i = 0; i < reader.FieldCount; i++)
                {
                    values[reader.GetName(i) is { Length: > 0 } name ? name : $"#{i}"] = reader.IsDBNull(i) ? null : reader.GetValue(i);
                }

                rows.Add(new Row(values, reader.FieldCount));
            }
        }
        while (await reader.NextResultAsync(TestContext.Current.CancellationToken));

        return rows;
    }

    /// <summary>A clustering write: one row of exactly one column, read as the provider reads it.</summary>
    public async Task<bool> BooleanAsync(string key, params (string Name, object? Value, DbType Type)[] parameters)
    {
        var row = Assert.Single(await RowsAsync(key, parameters));
        Assert.Equal(1, row.FieldCount);
        return Convert.ToBoolean(row.Values.Values.Single(), CultureInfo.InvariantCulture);
    }

    public sealed record Row(Dictionary<string, object?> Values, int FieldCount)
    {
        public T Get<T>(string column)
        {
            var value = Values[column];
            return value switch
            {
                null => default!,
                DateTime time => (T)(object)DateTime.SpecifyKind(time, DateTimeKind.Utc),
                T typed => typed,
                _ => (T)Convert.ChangeType(value, Nullable.GetUnderlyingType(typeof(T)) ?? typeof(T), CultureInfo.InvariantCulture),
            };
        }
    }
}
