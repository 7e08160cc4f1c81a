// Generates format-cases.json: glibc's printf of each format and value, with the casts Lua 5.1's
// str_format applies (long long for d i, unsigned long long for o u x X, int for c).
// cc -o gen gen-format-cases.c -lm && ./gen > format-cases.json
#include <stdio.h>
#include <string.h>
#include <math.h>
int main(void) {
  const char *fmts[] = {"%d","%5d","%-5d|","%05d","%+d","% d","%.3d","%.0d","%i","%x","%X","%#x","%#X","%o","%#o","%u","%08.3x",
    "%f","%.0f","%.1f","%5.1f","%.2f","%#.0f","%010.3f","%-10.2f|","%+.3f","% f","%e","%E","%.0e","%#.0e","%.3e","%12.4e","%g","%G","%.3g","%.20g","%#g","%#.3g","%.0g","%10g","%-10g|","%+g","%.17g","%.14g","%c","%5c","%-3c|"};
  double vals[] = {0, -0.0, 1, -1, 2.5, 3.5, -2.5, 2.25, 0.125, 0.1, 1.0/3, 12345, 1234567, 1e20, 1e-5, 123.456, 9.9999999, 0.00001234, 1e300, 5e-324, 2147483648.0, 9007199254740993.0, -123456789.987, 65, 255, 1e15, 99.5, 0.5, 1.5, INFINITY, -INFINITY, NAN, 9.2233720368547758e18, -9.3e18, 1.8e19};
  int nf = sizeof(fmts)/sizeof(*fmts), nv = sizeof(vals)/sizeof(*vals);
  char buf[4096];
  printf("[\n");
  int first = 1;
  for (int i = 0; i < nf; i++) for (int j = 0; j < nv; j++) {
    const char *f = fmts[i]; double v = vals[j];
    char conv = 0; for (const char *p = f; *p; p++) if (strchr("dixXoufeEgGc", *p)) { conv = *p; }
    char form[64];
    if (strchr("di", conv)) { if (isnan(v) || v >= 9223372036854775808.0 || v < -9223372036854775808.0) continue; /* UB in C: handled separately */
      /* insert ll */ const char *c = strchr(f, conv); snprintf(form, sizeof form, "%.*sll%s", (int)(c - f), f, c); snprintf(buf, sizeof buf, form, (long long)v); }
    else if (strchr("xXou", conv)) { if (isnan(v) || fabs(v) >= 9223372036854775808.0) continue;
      const char *c = strchr(f, conv); snprintf(form, sizeof form, "%.*sll%s", (int)(c - f), f, c); snprintf(buf, sizeof buf, form, (unsigned long long)(long long)v); }
    else if (conv == 'c') { if (isnan(v) || fabs(v) > 1e9 || (int)v == 0 || (unsigned char)(int)v >= 128 || (unsigned char)(int)v < 32) continue; snprintf(buf, sizeof buf, f, (int)v); }
    else snprintf(buf, sizeof buf, f, v);
    printf("%s  [\"%s\", \"%.17g\", \"%s\"]", first ? "" : ",\n", f, v, buf); first = 0;
  }
  printf("\n]\n");
}
