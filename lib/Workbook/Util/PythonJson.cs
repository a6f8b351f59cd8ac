using System.Globalization;
using System.Text;

namespace Workbook.Util;

/// <summary>
/// Writes JSON exactly as Python's <c>json.dumps(value, indent=2)</c> does (ensure_ascii on: every non-ASCII
/// character as a lowercase <c>\uXXXX</c> escape; floats as Python's <c>repr</c>), so that datasets this workbook
/// generates can be compared byte for byte with files written by Python. Values: <see cref="string"/>,
/// <see cref="int"/>/<see cref="long"/>, <see cref="double"/> (always written as a float, e.g. <c>0.0</c>),
/// <see cref="bool"/>, null, ordered objects (<see cref="IEnumerable{T}"/> of <see cref="KeyValuePair{TKey,TValue}"/>
/// with string keys) and lists (any other <see cref="System.Collections.IEnumerable"/>).
/// </summary>
public static class PythonJson
{
    public static string Dumps(object? value)
    {
        var sb = new StringBuilder();
        Write(sb, value, 0);
        return sb.ToString();
    }

    static void Write(StringBuilder sb, object? value, int level)
    {
        switch (value)
        {
            case null: sb.Append("null"); break;
            case string s: WriteString(sb, s); break;
            case bool b: sb.Append(b ? "true" : "false"); break;
            case int i: sb.Append(i.ToString(CultureInfo.InvariantCulture)); break;
            case long l: sb.Append(l.ToString(CultureInfo.InvariantCulture)); break;
            case double d: sb.Append(FloatRepr(d)); break;
            case IEnumerable<KeyValuePair<string, object?>> obj: WriteContainer(sb, obj.ToList(), level, '{', '}', (kv, lvl) => { WriteString(sb, kv.Key); sb.Append(": "); Write(sb, kv.Value, lvl); }); break;
            case System.Collections.IEnumerable list: WriteContainer(sb, list.Cast<object?>().ToList(), level, '[', ']', (item, lvl) => Write(sb, item, lvl)); break;
            default: throw new ArgumentException($"Cannot write a {value.GetType().Name} as JSON.");
        }
    }

    static void WriteContainer<T>(StringBuilder sb, List<T> items, int level, char open, char close, Action<T, int> writeItem)
    {
        if (items.Count == 0)
        {
            sb.Append(open).Append(close);
            return;
        }
        sb.Append(open).Append('\n');
        for (int i = 0; i < items.Count; i++)
        {
            sb.Append(' ', 2 * (level + 1));
            writeItem(items[i], level + 1);
            if (i < items.Count - 1) sb.Append(',');
            sb.Append('\n');
        }
        sb.Append(' ', 2 * level).Append(close);
    }

    /// <summary>A JSON string literal with Python's escapes (ensure_ascii=True).</summary>
    public static void WriteString(StringBuilder sb, string s)
    {
        sb.Append('"');
        foreach (char c in s)
        {
            switch (c)
            {
                case '"': sb.Append("\\\""); break;
                case '\\': sb.Append("\\\\"); break;
                case '\n': sb.Append("\\n"); break;
                case '\r': sb.Append("\\r"); break;
                case '\t': sb.Append("\\t"); break;
                case '\b': sb.Append("\\b"); break;
                case '\f': sb.Append("\\f"); break;
                default:
                    if (c < 0x20 || c > 0x7e) sb.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
                    else sb.Append(c);
                    break;
            }
        }
        sb.Append('"');
    }

    /// <summary>
    /// Python's <c>repr(float)</c>: the shortest digits that round-trip; scientific notation (<c>1e-05</c>,
    /// <c>1.5e+16</c>) when the decimal exponent is below −4 or above 15, otherwise positional with at least one
    /// fractional digit (<c>0.0</c>, <c>0.2</c>, <c>3.0</c>).
    /// </summary>
    public static string FloatRepr(double d)
    {
        if (double.IsNaN(d)) return "NaN";
        if (double.IsPositiveInfinity(d)) return "Infinity";
        if (double.IsNegativeInfinity(d)) return "-Infinity";
        if (d == 0) return double.IsNegative(d) ? "-0.0" : "0.0";
        // "E16" gives 17 significant digits; "R" gives the shortest round-trip digits in some notation: normalise it.
        string r = Math.Abs(d).ToString("R", CultureInfo.InvariantCulture);
        string mantissa = r;
        int exp10 = 0;
        int e = r.IndexOfAny(new[] { 'E', 'e' });
        if (e >= 0)
        {
            mantissa = r[..e];
            exp10 = int.Parse(r[(e + 1)..], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture);
        }
        int dot = mantissa.IndexOf('.');
        string intPart = dot >= 0 ? mantissa[..dot] : mantissa;
        string fracPart = dot >= 0 ? mantissa[(dot + 1)..] : "";
        string digits = (intPart + fracPart).TrimStart('0');
        int leadingZeros = (intPart + fracPart).Length - digits.Length;
        // value = 0.digits × 10^decpt
        int decpt = intPart.Length + exp10 - leadingZeros;
        digits = digits.TrimEnd('0');
        if (digits.Length == 0) digits = "0";
        string sign = d < 0 ? "-" : "";
        if (decpt <= -4 || decpt > 16)
        {
            int exponent = decpt - 1;
            string m = digits.Length == 1 ? digits : digits[0] + "." + digits[1..];
            return $"{sign}{m}e{(exponent < 0 ? "-" : "+")}{Math.Abs(exponent):00}";
        }
        if (decpt <= 0) return $"{sign}0.{new string('0', -decpt)}{digits}";
        if (decpt >= digits.Length) return $"{sign}{digits}{new string('0', decpt - digits.Length)}.0";
        return $"{sign}{digits[..decpt]}.{digits[decpt..]}";
    }
}
