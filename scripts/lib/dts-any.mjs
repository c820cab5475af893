// Lists every use of the `any` type in the TypeScript declaration files given as arguments,
// with comments and string literals blanked out first; exits 1 if there is one.
import { readFileSync } from 'node:fs';

let found = 0;
for (const file of process.argv.slice(2)) {
  const source = readFileSync(file, 'utf8');
  // Blank comments and strings but keep line breaks, so line numbers stay right.
  const code = source.replace(/\/\*[\s\S]*?\*\/|\/\/[^\n]*|"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'|`(?:[^`\\]|\\.)*`/g,
    (m) => m.replace(/[^\n]/g, ' '));
  code.split('\n').forEach((line, i) => {
    if (/(^|[^\w$.])any(?![\w$])/.test(line)) {
      found++;
      console.log(`${file}:${i + 1}: ${source.split('\n')[i].trim()}`);
    }
  });
}
process.exit(found === 0 ? 0 : 1);
