#!/usr/bin/perl
# dh sequence addon: `dh $@ --with splitdebug` (or Build-Depends: dh-sequence-splitdebug) runs
# dh_splitdebug in place of dh_dwz and dh_strip. All the logic is in dh_splitdebug (Python).

use strict;
use warnings;
use Debian::Debhelper::Dh_Lib;

insert_before('dh_strip', 'dh_splitdebug');
remove_command('dh_strip');
remove_command('dh_dwz');

1;
